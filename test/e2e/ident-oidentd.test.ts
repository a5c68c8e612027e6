import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nobodyConnection, ownConnection, startOidentd, type Connection, type Oidentd } from '../helpers/oidentd.js';
import { clientSession } from '../helpers/superservers.js';
import { runPiped, startStandalone, waitFor, WRAPPER, type Standalone } from '../helpers/wrapper.js';

const closes = (logs: string) => logs.split('\n').filter((l) => l.includes('session close ')).length;

/**
 * The ident mode in front of the real oidentd, asked about real TCP
 * connections on loopback (one owned by root, the test, one by nobody).
 * What oidentd received is read from its own debug log: a lookup line per
 * query it answered, "Malformed request" for anything it could not read.
 */
describe('ident in front of the real oidentd', () => {
  let oid: Oidentd;
  let w: Standalone;
  let mine: Connection;
  let nobodys: Connection;
  beforeAll(async () => {
    [oid, mine, nobodys] = await Promise.all([startOidentd(), ownConnection(), nobodyConnection()]);
    w = await startStandalone(['-p', 'ident', '--connect', `127.0.0.1:${oid.port}`, '--log-level', '2']);
  });
  afterAll(async () => {
    await Promise.all([w?.stop(), mine?.close(), nobodys?.close()]);
    await oid?.stop();
  });

  /**
   * One session; resolves once the wrapper logged its close and oidentd
   * logged `expected` lines about requests (it may log after it replied).
   * Returns the reply and oidentd's new lines (its "Connection from" lines left out).
   */
  async function session(query: string, expected: number): Promise<{ reply: string; server: string[] }> {
    const before = oid.log().length;
    const done = closes(w.logs());
    const reply = (await clientSession(w.port, Buffer.from(query, 'latin1'))).toString('latin1');
    const lines = () => oid.log().slice(before).filter((l) => !l.startsWith('Connection from '));
    await waitFor(() => closes(w.logs()) > done && lines().length >= expected, 'the session close and oidentd\'s log');
    // A moment more, so that a line oidentd should not have logged would be seen.
    await new Promise((r) => setTimeout(r, 100));
    return { reply, server: lines() };
  }

  it('a connection of root: the USERID reply names root, byte for byte as oidentd sent it', async () => {
    const { listenPort: l, dialPort: d } = mine;
    const r = await session(`${l} , ${d}\r\n`, 1);
    expect(r.reply).toBe(`${l},${d}:USERID:UNIX:root\r\n`);
    expect(r.server).toEqual([`[localhost] Successful lookup: ${l} , ${d} : root (root)`]);
  });

  it('a connection of nobody: the reply names nobody (asked from its side)', async () => {
    const { listenPort: l, dialPort: d } = nobodys;
    const r = await session(`${d},${l}\r\n`, 1);
    expect(r.reply).toBe(`${d},${l}:USERID:UNIX:nobody\r\n`);
    expect(r.server).toEqual([`[localhost] Successful lookup: ${d} , ${l} : nobody (nobody)`]);
    // The other end of the same connection is the test's.
    const back = await session(`${l},${d}\r\n`, 1);
    expect(back.reply).toBe(`${l},${d}:USERID:UNIX:root\r\n`);
  });

  it("the RFC's white space: spaces and tabs around the numbers and the comma", async () => {
    const { listenPort: l, dialPort: d } = mine;
    const r = await session(` \t${l}\t ,\t ${d} \t\r\n`, 1);
    expect(r.reply).toBe(`${l},${d}:USERID:UNIX:root\r\n`);
    expect(r.server).toEqual([`[localhost] Successful lookup: ${l} , ${d} : root (root)`]);
  });

  it('no such connection: oidentd\'s NO-USER is relayed', async () => {
    const r = await session('1 , 2\r\n', 1);
    expect(r.reply).toBe('1,2:ERROR:NO-USER\r\n');
    expect(r.server).toEqual(['[localhost] 1 , 2 : ERROR : NO-USER']);
  });

  /** Garbage: INVALID-PORT from the wrapper; oidentd reads nothing (no lookup, no "Malformed request"). */
  const garbage: Array<[string, string, string]> = [
    ['text', 'garbage\r\n', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['an HTTP request', 'GET / HTTP/1.0\r\n', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['trailing junk (oidentd would take it)', 'PORTS junk\r\n', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['signs (oidentd would take them)', '+12,+13\r\n', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['a negative port', '-1,5\r\n', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['port 0', '0,5\r\n', '0 , 5 : ERROR : INVALID-PORT\r\n'],
    ['a port past 65535', '70000,5\r\n', '70000 , 5 : ERROR : INVALID-PORT\r\n'],
    ['no comma', '12 13\r\n', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['a bare LF', 'PORTS\n', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['a NUL', '12,\x0013\r\n', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['an escape sequence', '12,13\x1b[2J\r\n', '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['an overlong line', `${' '.repeat(200)}12,13\r\n`, '0 , 0 : ERROR : INVALID-PORT\r\n'],
    ['a query cut off by EOF', '12,13', '0 , 0 : ERROR : INVALID-PORT\r\n'],
  ];
  it.each(garbage)('%s: INVALID-PORT from the wrapper; nothing reaches oidentd', async (_n, query, answer) => {
    const ports = `${mine.listenPort},${mine.dialPort}`;
    const r = await session(query.replace('PORTS', ports), 0);
    expect(r.reply).toBe(answer);
    expect(r.server).toEqual([]);
  });

  it('the check above can fail: the same garbage through the generic mode reaches oidentd, which logs it', async () => {
    const before = oid.log().length;
    await runPiped(['-p', 'generic', '--connect', `127.0.0.1:${oid.port}`], 'garbage\r\n');
    await waitFor(() => oid.log().slice(before).some((l) => l.includes('Malformed request: "garbage')), 'oidentd to log the request');
  });

  it('a second query on the connection closes it unanswered and never reaches oidentd', async () => {
    const { listenPort: l, dialPort: d } = mine;
    const r = await session(`${l},${d}\r\n${l},${d}\r\n`, 1);
    expect(r.reply).toBe(`${l},${d}:USERID:UNIX:root\r\n`);
    expect(r.server).toEqual([`[localhost] Successful lookup: ${l} , ${d} : root (root)`]);
  });

  it('the refusals are logged with their code', () => {
    expect(w.logs()).toMatch(/refused client=127\.0\.0\.1 protocol=ident state=done code=bad_syntax reason="no port number \(1-5 digits\) at the start" line="garbage"/);
    expect(w.logs()).toMatch(/code=bad_argument reason="port 70000 out of 1\.\.65535" line="70000,5"/);
  });

  it('piped by hand: one query, its reply', async () => {
    const { listenPort: l, dialPort: d } = mine;
    const r = await runPiped(['-p', 'ident', '--connect', `127.0.0.1:${oid.port}`], `${l} , ${d}\r\n`);
    expect(r.stdout.toString('latin1')).toBe(`${l},${d}:USERID:UNIX:root\r\n`);
    expect(r.code).toBe(0);
  });

  it('the server unreachable: the close without a reply (RFC 1413 reads it as UNKNOWN-ERROR)', async () => {
    const r = await runPiped(['-p', 'ident', '--connect', '127.0.0.1:1'], '5 , 6\r\n');
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toMatch(/server unavailable client=stdin protocol=ident/);
  });

  it('the idle timeout is 60 s unless idleTimeout is set (--check)', () => {
    const check = (args: string[]) => spawnSync(process.execPath, [WRAPPER, '--check', '-p', 'ident', '--connect', '127.0.0.1:113', ...args], { encoding: 'utf8' }).stdout;
    expect(check([])).toMatch(/^idleTimeout\s+60\s+default$/m);
    expect(check(["--idle-timeout", "600"])).toMatch(/^idleTimeout\s+600\s+flag$/m);
  });
});

describe('ident: replies from a real oidentd that break the grammar are replaced', () => {
  let esc: Oidentd;
  let long: Oidentd;
  beforeAll(async () => {
    // oidentd -R answers every query with this user id, whatever it holds.
    [esc, long] = await Promise.all([startOidentd(['-R', 'ev\x1b[2Jil']), startOidentd(['-R', 'u'.repeat(1200)])]);
  });
  afterAll(async () => {
    await Promise.all([esc?.stop(), long?.stop()]);
  });

  it('an escape sequence in the user id: UNKNOWN-ERROR instead, the close, a note in the log', async () => {
    const raw = await runPiped(['-p', 'generic', '--connect', `127.0.0.1:${esc.port}`], '5 , 6\r\n');
    expect(raw.stdout.toString('latin1')).toBe('5,6:USERID:UNIX:ev\x1b[2Jil\r\n');
    const r = await runPiped(['-p', 'ident', '--connect', `127.0.0.1:${esc.port}`], '5 , 6\r\n');
    expect(r.stdout.toString('latin1')).toBe('5 , 6 : ERROR : UNKNOWN-ERROR\r\n');
    expect(r.stderr).toMatch(/note client=stdin protocol=ident session=[0-9a-f]{12}: server reply replaced by UNKNOWN-ERROR: reply control byte 0x1b in the user id/);
  });

  it('a reply line of 1224 bytes (a user id of 1200): past maxReplyLineLength, replaced; with a higher limit, past the RFC\'s 512', async () => {
    const raw = await runPiped(['-p', 'generic', '--connect', `127.0.0.1:${long.port}`], '5 , 6\r\n');
    expect(raw.stdout.toString('latin1')).toBe(`5,6:USERID:UNIX:${'u'.repeat(1200)}\r\n`);
    const r = await runPiped(['-p', 'ident', '--connect', `127.0.0.1:${long.port}`], '5 , 6\r\n');
    expect(r.stdout.toString('latin1')).toBe('5 , 6 : ERROR : UNKNOWN-ERROR\r\n');
    expect(r.stderr).toMatch(/reply line longer than 1000 bytes/);
    const wide = await runPiped(['-p', 'ident', '--max-reply-line-length', '4096', '--connect', `127.0.0.1:${long.port}`], '5 , 6\r\n');
    expect(wide.stdout.toString('latin1')).toBe('5 , 6 : ERROR : UNKNOWN-ERROR\r\n');
    expect(wide.stderr).toMatch(/user id longer than 512 bytes/);
  });
});
