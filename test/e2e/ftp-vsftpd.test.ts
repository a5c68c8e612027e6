import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVsftpd, type Vsftpd } from '../helpers/vsftpd.js';
import { curl, py, raw, type Raw } from '../helpers/wire.js';
import { freePort, runPiped, startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

const FILE = 'hello over ftp\r\nsecond line\n' + 'x'.repeat(200_000) + '\nend\n';

/** python ftplib, passive or active: list, get, resume, put; prints what it saw. */
const FTPLIB = `import ftplib, io, sys
port, passive, name = int(sys.argv[1]), sys.argv[2] == 'pasv', sys.argv[3]
f = ftplib.FTP(); print(f.connect('127.0.0.1', port)); print(f.login())
f.set_pasv(passive)
print(f.nlst('pub'))
b = io.BytesIO(); print(f.retrbinary('RETR pub/a.txt', b.write)); print(len(b.getvalue()), b.getvalue()[:20])
b = io.BytesIO(); print(f.retrbinary('RETR pub/a.txt', b.write, rest=6)); print(len(b.getvalue()), b.getvalue()[:14])
print(f.storbinary('STOR up/' + name, io.BytesIO(b'uploaded ' * 5000)))
print(f.size('up/' + name))
lines = []; print(f.retrlines('LIST pub', lines.append)); print(len(lines))
print(f.quit())`;

/** A raw control connection, greeting read. */
async function control(port: number): Promise<Raw> {
  const c = await raw(port);
  await c.until('220 ');
  return c;
}

/** Sends a line and waits for the reply line that begins with one of the codes. */
async function cmd(c: Raw, line: string, code: string): Promise<string> {
  const before = c.received().length;
  c.send(line);
  await waitFor(() => c.received().slice(before).includes(`\n${code}`) || c.received().slice(before).startsWith(code), `${code} after ${JSON.stringify(line)}`);
  return c.received().slice(before);
}

async function anonymous(port: number): Promise<Raw> {
  const c = await control(port);
  await cmd(c, 'USER anonymous\r\n', '331');
  await cmd(c, 'PASS guest@example.org\r\n', '230');
  return c;
}

/** Connects a data socket (optionally from a given local address) and reads it to its end. */
function dataConnection(port: number, localAddress?: string): Promise<{ data: string; sock: Socket }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    let data = '';
    sock.on('data', (b: Buffer) => (data += b.toString('latin1')));
    sock.on('error', reject);
    sock.on('close', () => resolve({ data, sock }));
  });
}

const epsvPort = (reply: string) => Number(/\(\|\|\|(\d+)\|\)/.exec(reply)![1]);

describe('ftp through the built wrapper in front of a real vsftpd', () => {
  let vs: Vsftpd;
  let w: Standalone;

  beforeAll(async () => {
    vs = await startVsftpd();
    writeFileSync(join(vs.root, 'pub', 'a.txt'), FILE);
    w = await startStandalone(['--protocol', 'ftp', '--connect', `127.0.0.1:${vs.port}`, '--log-level', '3', '--max-login-attempts', '2', '--max-violations', '50']);
  });
  afterAll(async () => {
    await w?.stop();
    await vs?.stop();
  });

  const url = (port: number, path: string) => `ftp://127.0.0.1:${port}/${path}`;

  it('curl: EPSV, PASV (--disable-epsv), EPRT (-P) and PORT (-P --disable-eprt) fetch the same bytes as direct', async () => {
    const direct = await curl(url(vs.port, 'pub/a.txt'));
    expect(direct).toBe(FILE);
    for (const mode of [[], ['--disable-epsv'], ['-P', '127.0.0.1'], ['-P', '127.0.0.1', '--disable-eprt']]) {
      expect(await curl(...mode, url(w.port, 'pub/a.txt')), mode.join(' ')).toBe(FILE);
    }
    expect(await curl(url(w.port, 'pub/'))).toBe(await curl(url(vs.port, 'pub/')));
    const got = vs.commands();
    expect(got).toContain('EPSV');
    expect(got).toContain('PASV');
    // Active mode: the server was told the wrapper's own listener on its loopback side.
    expect(got.some((c) => c.startsWith('EPRT |1|127.0.0.1|'))).toBe(true);
    expect(got.some((c) => c.startsWith('PORT 127,0,0,1,'))).toBe(true);
    expect(w.logs()).toContain('data connection server -> client 127.0.0.1:');
    expect(w.logs()).toContain('data connection client 127.0.0.1 -> server 127.0.0.1:');
  });

  it('curl -T: an upload through the passive relay lands whole', async () => {
    const src = join(vs.dir, 'upload.bin');
    const body = Buffer.alloc(300_000, 0).map((_, i) => (i * 7) & 0xff);
    writeFileSync(src, body);
    await curl('-T', src, url(w.port, 'up/curl-up.bin'));
    await waitFor(() => {
      try {
        return readFileSync(join(vs.root, 'up', 'curl-up.bin')).length === body.length;
      } catch {
        return false;
      }
    }, 'the upload on disk');
    expect(readFileSync(join(vs.root, 'up', 'curl-up.bin')).equals(body)).toBe(true);
  });

  it('python ftplib, passive and active: list, get, resume, put: the same as direct', async () => {
    for (const mode of ['pasv', 'port']) {
      const direct = await py(FTPLIB, String(vs.port), mode, `direct-${mode}`);
      const wrapped = await py(FTPLIB, String(w.port), mode, `wrapped-${mode}`);
      expect(wrapped, mode).toBe(direct.replace(/direct/g, 'wrapped'));
      expect(wrapped).toContain(`${FILE.length} b'hello over ftp\\r\\nseco'`);
      expect(wrapped).toContain(`${FILE.length - 6} b'over ftp\\r\\nseco'`);
      expect(readFileSync(join(vs.root, 'up', `wrapped-${mode}`), 'latin1')).toBe('uploaded '.repeat(5000));
    }
  });

  it('hostile: bounce PORT/EPRT, low ports, SITE EXEC, IAC, wrong state: refused, and the server never sees them', async () => {
    const start = vs.commands().length;
    const c = await control(w.port);
    expect(await cmd(c, 'LIST\r\n', '530')).toBe('530 Please login with USER and PASS.\r\n');
    expect(await cmd(c, 'SITE CHMOD 777 x\r\n', '530')).toContain('530');
    expect(await cmd(c, 'PASS nouser\r\n', '503')).toContain('503');
    await cmd(c, 'USER anonymous\r\n', '331');
    // A refused password line (a control byte) is never logged, whatever the refusal.
    expect(await cmd(c, 'PASS Zq9\x01secret\r\n', '501')).toContain('501');
    expect(await cmd(c, 'Zq9stray\r\n', '500')).toContain('500');
    await cmd(c, 'PASS guest@example.org\r\n', '230');
    expect(await cmd(c, 'PORT 10,0,0,1,4,1\r\n', '500')).toBe('500 Illegal PORT command.\r\n');
    expect(await cmd(c, 'PORT 127,0,0,1,0,25\r\n', '500')).toBe('500 Illegal PORT command.\r\n');
    expect(await cmd(c, 'EPRT |1|127.0.0.2|2000|\r\n', '500')).toBe('500 Illegal EPRT command.\r\n');
    expect(await cmd(c, 'EPRT |1|127.0.0.1|21|\r\n', '500')).toBe('500 Illegal EPRT command.\r\n');
    expect(await cmd(c, 'SITE EXEC /bin/sh\r\n', '500')).toBe('500 Unknown SITE command.\r\n');
    expect(await cmd(c, '\xff\xf4\xff\xf2\xff\xffSTAT\r\n', '500')).toBe('500 Telnet commands are not accepted.\r\n');
    expect(await cmd(c, 'RNTO x\r\n', '503')).toContain('503');
    // The line limit: 512 octets with CRLF pass, 513 do not.
    expect(await cmd(c, `CWD ${'a'.repeat(507)}\r\n`, '500')).toBe('500 Command line too long.\r\n');
    expect(await cmd(c, `CWD ${'b'.repeat(506)}\r\n`, '550')).toContain('550');
    expect(await cmd(c, 'NOOP\r\n', '200')).toContain('200');
    c.send('QUIT\r\n');
    await c.closed;
    const got = (await waitFor(() => vs.commands().length >= start + 5, 'QUIT in the vsftpd log'), vs.commands().slice(start));
    expect(got).toEqual(['USER anonymous', 'PASS <password>', `CWD ${'b'.repeat(506)}`, 'NOOP', 'QUIT']);
    expect(w.logs()).toContain('code=bounce');
    expect(w.logs()).toContain('code=telnet_iac');
    expect(w.logs()).toContain('code=site_command');
    expect(w.logs()).not.toContain('Zq9');
  });

  it('sequences follow vsftpd\'s replies: EPSV ALL locks out PASV and PORT, REST\'s 350 allows only the transfer, RNFR\'s 350 only RNTO', async () => {
    const start = vs.commands().length;
    const c = await anonymous(w.port);
    expect(await cmd(c, 'EPSV ALL\r\n', '200')).toContain('200');
    expect(await cmd(c, 'PASV\r\n', '503')).toBe('503 EPSV ALL in effect: use EPSV.\r\n');
    expect(await cmd(c, 'PORT 127,0,0,1,40,1\r\n', '503')).toContain('503');
    expect(await cmd(c, 'REST 5\r\n', '350')).toContain('350');
    expect(await cmd(c, 'DELE up/x\r\n', '503')).toBe('503 Bad sequence of commands.\r\n');
    // REST 0 (a client probing REST STREAM) restarts nothing: the session is back to normal.
    expect(await cmd(c, 'REST 0\r\n', '350')).toContain('350');
    expect(await cmd(c, 'RNFR pub/a.txt\r\n', '350')).toContain('350');
    expect(await cmd(c, 'MKD up/y\r\n', '503')).toBe('503 Bad sequence of commands.\r\n');
    c.send('QUIT\r\n');
    await c.closed;
    await waitFor(() => vs.commands().slice(start).includes('QUIT'), 'QUIT in the vsftpd log');
    expect(vs.commands().slice(start)).toEqual(['USER anonymous', 'PASS <password>', 'EPSV ALL', 'REST 5', 'REST 0', 'RNFR pub/a.txt', 'QUIT']);
  });

  it('the same hostile PORT sent directly does reach vsftpd (what the wrapper stops)', async () => {
    const c = await anonymous(vs.port);
    await cmd(c, 'PORT 10,0,0,1,4,1\r\n', '500');
    c.send('QUIT\r\n');
    await c.closed;
    await waitFor(() => vs.commands().includes('PORT 10,0,0,1,4,1'), 'PORT in the vsftpd log');
  });

  it('brute force: the 2nd failed PASS is passed on, then 421 and the close; the server saw two PASS', async () => {
    const start = vs.commands().length;
    const c = await control(w.port);
    await cmd(c, 'USER nosuchuser\r\n', '331');
    expect(await cmd(c, 'PASS wrong1\r\n', '530')).toBe('530 Login incorrect.\r\n');
    await cmd(c, 'USER nosuchuser\r\n', '331');
    c.send('PASS wrong2\r\n');
    await c.closed;
    expect(c.received()).toMatch(/530 Login incorrect\.\r\n421 Too many failed logins, closing control connection\.\r\n$/);
    const got = vs.commands().slice(start);
    expect(got.filter((x) => x.startsWith('PASS')).length).toBe(2);
    expect(w.logs()).not.toContain('wrong1');
    expect(w.logs()).not.toContain('wrong2');
  });

  it('a data connection from another address is refused; the client\'s own gets the listing', async () => {
    const c = await anonymous(w.port);
    const port = epsvPort(await cmd(c, 'EPSV\r\n', '229'));
    const thief = await dataConnection(port, '127.0.0.2');
    expect(thief.data).toBe('');
    await waitFor(() => w.logs().includes(`refused data connection from 127.0.0.2 to 127.0.0.1:${port}`), 'the refusal in the log');
    const mine = dataConnection(port);
    await cmd(c, 'NLST pub\r\n', '226');
    expect((await mine).data).toBe('pub/a.txt\r\n');
    c.send('QUIT\r\n');
    await c.closed;
  });

  it('the client is the only end the wrapper announces: the 229 names the wrapper\'s port, not vsftpd\'s', async () => {
    const c = await anonymous(w.port);
    const port = epsvPort(await cmd(c, 'EPSV\r\n', '229'));
    const pasv = await cmd(c, 'PASV\r\n', '227');
    const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(pasv)!;
    expect(m.slice(1, 5).join('.')).toBe('127.0.0.1');
    const vsLog = vs.log();
    // vsftpd's own passive ports (pasv_min_port..) are not what the client got.
    const vsPorts = [...vsLog.matchAll(/\(\|\|\|(\d+)\|\)/g)].map((x) => Number(x[1]));
    expect(vsPorts).not.toContain(port);
    c.send('QUIT\r\n');
    await c.closed;
  });
});

describe('ftp data listeners: bounds', () => {
  let vs: Vsftpd;
  beforeAll(async () => {
    vs = await startVsftpd();
    writeFileSync(join(vs.root, 'pub', 'a.txt'), FILE);
  });
  afterAll(async () => vs?.stop());

  it('dataTimeout: a listener nobody connects to is closed', async () => {
    const w = await startStandalone(['--protocol', 'ftp', '--connect', `127.0.0.1:${vs.port}`, '--data-timeout', '1']);
    try {
      const c = await anonymous(w.port);
      const port = epsvPort(await cmd(c, 'EPSV\r\n', '229'));
      await waitFor(() => w.logs().includes(`data listener 127.0.0.1:${port} (passive) closed: no connection in 1 s`), 'the listener closed');
      await expect(dataConnection(port)).rejects.toThrow(/ECONNREFUSED/);
      c.send('QUIT\r\n');
      await c.closed;
    } finally {
      await w.stop();
    }
  });

  it('pasvAddress: the 227 announces it (in vsftpd\'s own words), the 229 only the port', async () => {
    const w = await startStandalone(['--protocol', 'ftp', '--connect', `127.0.0.1:${vs.port}`, '--pasv-address', '203.0.113.9']);
    try {
      const c = await anonymous(w.port);
      expect(await cmd(c, 'PASV\r\n', '227')).toMatch(/^227 Entering Passive Mode \(203,0,113,9,\d+,\d+\)\.\r\n$/);
      expect(await cmd(c, 'EPSV\r\n', '229')).toMatch(/^229 Entering Extended Passive Mode \(\|\|\|\d+\|\)\r\n$/);
      c.send('QUIT\r\n');
      await c.closed;
    } finally {
      await w.stop();
    }
  });

  it('pasvPortRange: the listener takes a port of the range; a range with no free port gives 425', async () => {
    const p = await freePort();
    const w = await startStandalone(['--protocol', 'ftp', '--connect', `127.0.0.1:${vs.port}`, '--pasv-port-range', `${p}-${p}`]);
    try {
      const c = await anonymous(w.port);
      expect(epsvPort(await cmd(c, 'EPSV\r\n', '229'))).toBe(p);
      const c2 = await anonymous(w.port);
      // The one port is held by the first session's listener.
      expect(await cmd(c2, 'EPSV\r\n', '425')).toBe("425 Can't open data connection.\r\n");
      for (const x of [c, c2]) {
        x.send('QUIT\r\n');
        await x.closed;
      }
    } finally {
      await w.stop();
    }
  });
});

describe('ftp in inetd mode', () => {
  let vs: Vsftpd;
  beforeAll(async () => {
    vs = await startVsftpd();
    writeFileSync(join(vs.root, 'pub', 'a.txt'), FILE);
  });
  afterAll(async () => vs?.stop());

  it('a session piped in by hand: the control channel works, PASV has no data channel (425)', async () => {
    const r = await runPiped(['--protocol', 'ftp', '--connect', `127.0.0.1:${vs.port}`], 'USER anonymous\r\nPASS x@y\r\nPWD\r\nPASV\r\nSITE EXEC ls\r\nQUIT\r\n');
    const out = r.stdout.toString('latin1');
    expect(out).toMatch(/^220 .*\r\n331 .*\r\n230 .*\r\n257 "\/" is the current directory\r\n425 Can't open data connection.\r\n500 Unknown SITE command.\r\n221 Goodbye.\r\n$/);
    expect(r.code).toBe(0);
  });
});
