// The Node floor (issue 11): the barest TCP proxy Node can be, run as its own
// process by the bench. Any Node proxy costs at least this much; the wrapper's
// own cost is measured against it. Usage: node pipe-proxy.mjs LISTEN_PORT DEST_PORT
import net from 'node:net';

const [listenPort, destPort] = process.argv.slice(2).map(Number);
const server = net.createServer((c) => {
  const s = net.connect(destPort, '127.0.0.1');
  c.on('error', () => s.destroy());
  s.on('error', () => c.destroy());
  c.pipe(s);
  s.pipe(c);
});
server.maxConnections = 100_000;
server.listen(listenPort, '127.0.0.1');
