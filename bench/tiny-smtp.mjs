// A minimal SMTP server for part 5 (many sessions): Postfix's smtp-sink stops
// accepting at about 256 open sessions, far below the 10,000 the part holds
// open. Answers 220 on connect, 354 to DATA, 250 after the body's lone dot,
// 221 to QUIT (then closes), 250 to anything else. Pipelined lines are fine.
// Usage: node tiny-smtp.mjs  (prints {"port":N} once listening)
import net from 'node:net';

const server = net.createServer((s) => {
  s.on('error', () => {});
  let data = false;
  let buf = '';
  s.write('220 tiny-smtp ESMTP\r\n');
  s.on('data', (b) => {
    buf += b.toString('latin1');
    let i;
    let reply = '';
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i + 1);
      buf = buf.slice(i + 1);
      if (data) {
        if (line === '.\r\n' || line === '.\n') {
          data = false;
          reply += '250 2.0.0 queued\r\n';
        }
        continue;
      }
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'DATA') {
        data = true;
        reply += '354 go ahead\r\n';
      } else if (verb === 'QUIT') {
        s.end(`${reply}221 2.0.0 bye\r\n`);
        return;
      } else if (verb === 'EHLO') {
        reply += '250-tiny-smtp\r\n250 PIPELINING\r\n';
      } else {
        reply += '250 2.0.0 ok\r\n';
      }
    }
    if (reply) s.write(reply);
  });
});
server.maxConnections = 1_000_000;
server.listen(0, '127.0.0.1', 4096, () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
