import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFingerd, type Fingerd } from '../helpers/fingerd.js';
import { ownConnection, startOidentd, type Connection, type Oidentd } from '../helpers/oidentd.js';
import { socketActivated } from '../helpers/socket-activate.js';
import { clientSession, inetdConf, startDaemon, xinetdConf, type Substitutions } from '../helpers/superservers.js';
import { freePort, waitFor, WRAPPER } from '../helpers/wrapper.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

/** A front end the wrapper runs under, on a loopback port. */
interface Front {
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * finger and ident under the real superservers, each configured from the
 * shipped example (inetd.conf.example, xinetd.d/protowrap-finger and
 * protowrap-ident) with only the port, the wrapper's path, the user and the
 * real server substituted, and under systemd-socket-activate --inetd -a
 * (systemd's Accept=yes). Standalone and piped sessions are in
 * finger-fingerd.test.ts and ident-oidentd.test.ts. Each mode runs one good
 * query and one hostile one, and the real server's own record says what it
 * received.
 */
describe('finger and ident in every superserver mode', () => {
  let dir: string;
  let fd: Fingerd;
  let oid: Oidentd;
  let conn: Connection;
  let xinetd: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-fi-modes-'));
    fd = makeFingerd(dir);
    [oid, conn] = await Promise.all([startOidentd(), ownConnection()]);
    xinetd = execFileSync('sh', [join(ROOT, 'test/helpers/fetch-xinetd.sh')], { encoding: 'utf8' }).trim();
  });
  afterAll(async () => {
    await Promise.all([conn?.close(), oid?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const subst = async (protocol: 'finger' | 'ident'): Promise<Substitutions> => ({
    port: await freePort(),
    wrapper: WRAPPER,
    user: userInfo().username,
    ...(protocol === 'finger' ? { exec: fd.fingerd } : { connect: `127.0.0.1:${oid.port}` }),
  });

  const fronts: Record<string, (protocol: 'finger' | 'ident') => Promise<Front>> = {
    'inetutils-inetd (inetd.conf.example)': async (protocol) => {
      const s = await subst(protocol);
      const conf = join(dir, `inetd-${protocol}.conf`);
      writeFileSync(conf, inetdConf(read('inetd.conf.example'), protocol, s));
      const d = await startDaemon('inetutils-inetd', ['-d', `--pidfile=${join(dir, `inetd-${protocol}.pid`)}`, conf], s.port);
      return { port: s.port, stop: () => d.stop() };
    },
    [`xinetd (xinetd.d/protowrap-*)`]: async (protocol) => {
      const s = await subst(protocol);
      const conf = join(dir, `xinetd-${protocol}.conf`);
      writeFileSync(conf, xinetdConf(read(`xinetd.d/protowrap-${protocol}`), s, join(dir, `xinetd-${protocol}.log`)));
      const d = await startDaemon(xinetd, ['-dontfork', '-f', conf, '-pidfile', join(dir, `xinetd-${protocol}.pid`)], s.port);
      return { port: s.port, stop: () => d.stop() };
    },
    'systemd-socket-activate --inetd -a (Accept=yes)': async (protocol) => {
      const s = await subst(protocol);
      const server = protocol === 'finger' ? ['--exec', s.exec!] : ['--connect', s.connect!];
      return socketActivated(['-p', protocol, ...server]);
    },
  };

  describe.each(Object.keys(fronts))('%s', (name) => {
    it('finger: a query reaches in.fingerd and its reply comes back; forwarding never does', async () => {
      const front = await fronts[name]!('finger');
      try {
        const before = fd.queries().length;
        const good = await clientSession(front.port, Buffer.from('/W root\r\n'));
        expect(good.toString('latin1')).toMatch(/^Login: root\s+Name: root\r\nDirectory: \/root\s/);
        await waitFor(() => fd.queries().length > before, 'in.fingerd to run finger');
        const bad = await clientSession(front.port, Buffer.from('root@localhost@localhost\r\n'));
        expect(bad.toString('latin1')).toBe('finger: forwarding service denied\r\n');
        // One more good query: whatever the hostile session could have made in.fingerd run is logged before it.
        await clientSession(front.port, Buffer.from('nobody\r\n'));
        await waitFor(() => fd.queries().length > before + 1, 'in.fingerd to run finger again');
        expect(fd.queries().slice(before)).toEqual(['2:-l root', '1:nobody']);
      } finally {
        await front.stop();
      }
    });

    it('ident: a query about a real connection is answered root; garbage never reaches oidentd', async () => {
      const front = await fronts[name]!('ident');
      try {
        const before = oid.log().length;
        const { listenPort: l, dialPort: d } = conn;
        const good = await clientSession(front.port, Buffer.from(`${l} , ${d}\r\n`));
        expect(good.toString('latin1')).toBe(`${l},${d}:USERID:UNIX:root\r\n`);
        const bad = await clientSession(front.port, Buffer.from('GET / HTTP/1.0\r\n'));
        expect(bad.toString('latin1')).toBe('0 , 0 : ERROR : INVALID-PORT\r\n');
        const again = await clientSession(front.port, Buffer.from(`${d},${l}\r\n`));
        expect(again.toString('latin1')).toBe(`${d},${l}:USERID:UNIX:root\r\n`);
        await waitFor(() => oid.log().slice(before).filter((x) => x.includes('Successful lookup')).length === 2, 'oidentd to log both lookups');
        expect(oid.log().slice(before).filter((x) => !x.startsWith('Connection from '))).toEqual([
          `[localhost] Successful lookup: ${l} , ${d} : root (root)`,
          `[localhost] Successful lookup: ${d} , ${l} : root (root)`,
        ]);
      } finally {
        await front.stop();
      }
    });
  });
});
