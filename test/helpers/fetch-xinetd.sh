#!/bin/sh
# Prints the path of an xinetd executable for the superserver tests.
# Debian's xinetd conflicts with inetutils-inetd (which CI installs), so when
# xinetd is not installed its package is downloaded (apt-get download) and
# unpacked (dpkg-deb -x) into a cache folder, once; later runs reuse it.
# Cache: $PROTOWRAP_CACHE/xinetd, default node_modules/.cache/protowrap/xinetd.
# Usage: sh test/helpers/fetch-xinetd.sh   (CI may run it ahead of the tests)
set -eu
if command -v xinetd >/dev/null 2>&1; then
  command -v xinetd
  exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
cache=${PROTOWRAP_CACHE:-$here/../../node_modules/.cache/protowrap}/xinetd
bin=$cache/root/usr/sbin/xinetd
if [ ! -x "$bin" ]; then
  tmp=$cache.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp/root"
  # apt-get download writes into the current folder.
  (cd "$tmp" && apt-get download xinetd >&2)
  dpkg-deb -x "$tmp"/xinetd_*.deb "$tmp/root"
  rm -f "$tmp"/xinetd_*.deb
  # Publish in one rename, so a concurrent run never sees half a folder.
  mkdir -p "$(dirname "$cache")"
  mv -T "$tmp" "$cache" 2>/dev/null || rm -rf "$tmp"
fi
[ -x "$bin" ] || { echo "fetch-xinetd: no xinetd at $bin" >&2; exit 1; }
echo "$(cd "$(dirname "$bin")" && pwd)/xinetd"
