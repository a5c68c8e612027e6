#!/bin/sh
# Runs a command with /dev/log pointing at a test's syslog socket, leaving
# the host untouched. Call it as:
#   unshare -m sh devlog-ns.sh SOCKET SCRATCH_DIR COMMAND [ARG...]
# Inside the private mount namespace (unshare -m makes every mount private)
# /dev becomes a small tmpfs holding the device nodes node and its children
# use, bind-mounted from the real /dev, and a /dev/log symlink to SOCKET.
# libc's syslog() only ever writes to /dev/log; this is how a test gives it a
# real rsyslogd without touching the machine's /dev. Everything mounted here
# vanishes with the namespace's last process.
set -eu
sock=$1
scratch=$2
shift 2
olddev=$scratch/olddev
mkdir -p "$olddev"
mount --rbind /dev "$olddev"
mount -t tmpfs -o mode=755,size=64k protowrap-testdev /dev
for n in null zero full random urandom tty; do
  [ -e "$olddev/$n" ] || continue
  : > "/dev/$n"
  mount --bind "$olddev/$n" "/dev/$n"
done
for d in pts shm; do
  [ -d "$olddev/$d" ] || continue
  mkdir "/dev/$d"
  mount --rbind "$olddev/$d" "/dev/$d"
done
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
ln -s "$sock" /dev/log
umount -l "$olddev"
exec "$@"
