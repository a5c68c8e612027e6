import { proxyClient } from './proxy-client.js';
import { waitFor } from './wrapper.js';

/**
 * One POP3 session through a wrapper: greeting, USER, PASS, then QUIT.
 * from: the loopback address to dial from; header: bytes sent first (a PROXY
 * header for a wrapper that trusts this client as a proxy). Resolves with
 * every byte the client received; a connection the wrapper refuses at once
 * (a ban) resolves with its reply.
 */
export async function pop3Login(port: number, password: string, opts: { from?: string; header?: Buffer; user?: string } = {}): Promise<string> {
  const c = await proxyClient(port, opts.from ?? '127.0.0.1');
  let ended = false;
  void c.closed.then(() => (ended = true));
  if (opts.header) c.send(opts.header);
  const lines = () => c.received().split('\r\n').length - 1;
  const step = async (n: number, what: string) => {
    await waitFor(() => ended || lines() >= n, `${what}: ${JSON.stringify(c.received())}`, 20_000);
    return !ended;
  };
  // The wrapper has closed its side: close ours, so that the session (an inetd process) ends.
  const done = async () => {
    await c.closed;
    c.sock.end();
    return c.received();
  };
  if (!(await step(1, 'greeting')) || !c.received().startsWith('+OK')) return done();
  c.send(`USER ${opts.user ?? 'alice'}\r\n`);
  if (!(await step(2, 'USER reply'))) return done();
  c.send(`PASS ${password}\r\n`);
  if (!(await step(3, 'PASS reply'))) return done();
  c.send('QUIT\r\n');
  return done();
}
