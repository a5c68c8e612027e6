#!/usr/bin/env bash
# npm run demo: a hostile session piped through the built wrapper in front of
# a small line server, showing what the server got, what the client got and
# the log of the refused lines. Run `npm run build` first (npm run demo does).
set -euo pipefail
cd "$(dirname "$0")/.."
wrapper=dist/protowrap.js
[ -x "$wrapper" ] || { echo "run 'npm run build' first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Shows bytes one line each, with CR, NUL and other control bytes visible,
# long lines shortened.
show() {
  LC_ALL=C sed -n 'l 0' "$1" | sed -E 's/^(.{60}).{20,}(.{12})$/\1...\2/; s/^/    /'
}

printf 'HELLO demo\r\n'             >  "$work/session"   # a good line
printf '%02000d\r\n' 0              >> "$work/session"   # 2000 bytes: over the 1024 limit
printf 'bad\000byte\r\n'            >> "$work/session"   # a NUL byte
printf 'SITE EXEC /bin/sh\r\n'      >> "$work/session"   # matches the deny pattern
printf 'QUIT\r\n'                   >> "$work/session"   # a good line

cmd=("$wrapper" --exec "node demo/line-server.mjs '$work/server-got'" --deny '^SITE EXEC' --log-level 1 --log-stderr)
echo "protowrap demo: a hostile client, the wrapper, a small line server"
echo
echo "  \$ ${cmd[0]} --exec \"node demo/line-server.mjs FILE\" --deny '^SITE EXEC' --log-level 1 --log-stderr < session"
echo
echo "The client sends:"
show "$work/session"
set +e
"${cmd[@]}" < "$work/session" > "$work/client-got" 2> "$work/log"
status=$?
set -e
: >> "$work/server-got"
echo
echo "The server received (only the lines that passed, byte for byte):"
show "$work/server-got"
echo
echo "The client received (the server's answers; the wrapper adds nothing):"
show "$work/client-got"
echo
echo "The log (syslog, here also on stderr with --log-stderr):"
sed -E 's/^(.{150}).{20,}(.{20})$/\1...\2/; s/^/    /' "$work/log"
echo
echo "protowrap exited with status $status."
