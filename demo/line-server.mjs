// A tiny line server for the demo, spoken to over stdin/stdout (protowrap
// spawns it per connection with --exec). It greets, answers every line with
// its size, and appends the exact bytes it received to the file named by its
// first argument, so the demo can show what really reached the server.
import { appendFileSync } from 'node:fs';

const record = process.argv[2];
process.stdout.write('220 demo line server ready\r\n');
let pending = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  if (record) appendFileSync(record, chunk);
  pending = Buffer.concat([pending, chunk]);
  for (let lf = pending.indexOf(10); lf >= 0; lf = pending.indexOf(10)) {
    const line = pending.subarray(0, lf + 1);
    pending = pending.subarray(lf + 1);
    process.stdout.write(`250 got ${line.length} bytes\r\n`);
  }
});
process.stdin.on('end', () => process.stdout.end());
