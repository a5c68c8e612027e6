#!/bin/sh
# Instructions per message of one proxy, under valgrind's callgrind (a count
# that does not depend on how busy the machine is; perf has no PMU in a VM).
# Usage: bench/instructions.sh floor|generic|smtp [smtp-source flags...]
#   default flags: -d -s 5 -m 500 -l 1024 (messages on kept connections)
#   WRAPPER_FLAGS: more flags for the wrapper (e.g. "--log-level 0");
#   WRAPPER_JS: another build of dist/protowrap.js (to compare before/after)
# The proxy starts under callgrind, gets an untimed warm-up of the same
# workload, its counters are zeroed, the workload runs, and the count is
# dumped: Ir / messages. Needs valgrind and postfix (smtp-source, smtp-sink).
set -eu
variant=$1; shift
[ $# -gt 0 ] || set -- -d -s 5 -m 500 -l 1024
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/protowrap-ir.XXXXXX)
pick() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
sinkp=$(pick); proxp=$(pick)
smtp-sink -c -u nobody 127.0.0.1:$sinkp 1024 >/dev/null 2>&1 & sink=$!
case $variant in
  floor) cmd="node $here/pipe-proxy.mjs $proxp $sinkp" ;;
  generic|smtp) cmd="node ${WRAPPER_JS:-$here/../dist/protowrap.js} --protocol $variant --listen 127.0.0.1:$proxp --connect 127.0.0.1:$sinkp ${WRAPPER_FLAGS:-}" ;;
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
valgrind --tool=callgrind --callgrind-out-file=$dir/cg.out $cmd 2>$dir/vg.log & vg=$!
trap 'kill $vg $sink 2>/dev/null; rm -rf $dir' EXIT
i=0; until ss -ltn | grep -q "127.0.0.1:$proxp "; do i=$((i+1)); [ $i -lt 600 ] || { echo "proxy did not start" >&2; exit 1; }; sleep 0.2; done
# Warm-up, not counted: WARMUP_RUNS passes of the workload (default 3), so
# that V8 has compiled and optimized the hot code before the count starts.
for _ in $(seq ${WARMUP_RUNS:-3}); do smtp-source "$@" 127.0.0.1:$proxp; done
callgrind_control -z $vg >/dev/null
smtp-source "$@" 127.0.0.1:$proxp
callgrind_control -d $vg >/dev/null
m=$(echo "$@" | sed -n 's/.*-m \([0-9]*\).*/\1/p')
ir=$(cat $dir/cg.out* | sed -n 's/^summary: *//p; s/^totals: *//p' | sort -n | tail -1)
echo "$variant: $ir instructions for $m messages ($*): $((ir / m)) per message"
