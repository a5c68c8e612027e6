// The start-up floor (issue 11 item 3): the barest inetd-style exec proxy Node
// can be, run by part 1 beside the wrapper. It spawns the server, relays
// stdin to it and its stdout back, and exits when the client's side ends;
// no checks, no logs, no options. Any Node program doing the wrapper's job in
// inetd mode starts at least this slowly: what the wrapper adds over it is
// its own cost (loading its bundle, the command line, the session).
// CommonJS, as the wrapper's own file is (an ES module entry starts slower).
// Usage: node exec-floor.cjs COMMAND
'use strict';
const { spawn } = require('node:child_process');
const net = require('node:net');

const child = spawn(process.argv[2], [], { stdio: ['pipe', 'pipe', 'ignore'] });
const out = new net.Socket({ fd: 1, readable: false, writable: true });
const inp = new net.Socket({ fd: 0, readable: true, writable: false });
child.stdout.on('data', (b) => out.write(b));
inp.on('data', (b) => child.stdin.write(b));
inp.on('end', () => {
  child.kill();
  process.exit(0);
});
