import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { raw, type Raw } from '../helpers/wire.js';
import { startStandalone, waitFor, type Standalone } from '../helpers/wrapper.js';

/**
 * Issue 13 items 1, 2 and 5 against the real Dovecot. Each smuggling case is
 * sent twice: straight to Dovecot, where the command hidden in the literal
 * must really run (a CREATE whose mailbox then exists: proof that the case
 * reaches a place where Dovecot rejects the line before reading its
 * literal), and through the wrapper, where it must not.
 */

const GREETED = ' ready.\r\n';

interface Smuggle {
  readonly name: string;
  /** Commands to send (and wait for) first: login, select. */
  readonly setup: 'none' | 'login' | 'select';
  /** The line that announces the literal, without its CRLF; %L stands for the literal's {n+}. */
  readonly line: string;
  /** What follows the literal on its line (closes what the line opened). */
  readonly after?: string;
}

const CASES: readonly Smuggle[] = [
  { name: 'literal8 in LOGIN before login', setup: 'none', line: 'a LOGIN ~%L', after: ' password' },
  { name: 'literal8 in STATUS after login', setup: 'login', line: 'a STATUS INBOX ~%L' },
  { name: 'APPEND () instead of a mailbox', setup: 'login', line: 'a APPEND () %L' },
  { name: 'APPEND with a \\Recent flag', setup: 'login', line: 'a APPEND INBOX (\\Recent) %L' },
  { name: 'APPEND with an unquoted date', setup: 'login', line: 'a APPEND INBOX 01-Jan-2020 %L' },
  { name: 'APPEND with a second string', setup: 'login', line: 'a APPEND INBOX "x" %L' },
  { name: 'APPEND with a literal in the flag list', setup: 'login', line: 'a APPEND INBOX (\\Seen %L', after: ')' },
  { name: 'DELETE with an argument after the mailbox', setup: 'login', line: 'a DELETE nosuchbox %L' },
  { name: 'RENAME with a third argument', setup: 'login', line: 'a RENAME nosuch1 nosuch2 %L' },
  { name: 'STATUS with an argument after the item list', setup: 'login', line: 'a STATUS INBOX (MESSAGES) %L' },
  { name: 'CREATE parameters (never read by Dovecot 2.3)', setup: 'login', line: 'a CREATE Box1 (USE %L', after: ')' },
  { name: 'NOOP with an argument', setup: 'login', line: 'a NOOP %L' },
  { name: 'COPY with a third argument', setup: 'select', line: 'a COPY 1 nosuchbox %L' },
  { name: 'CHECK with an argument', setup: 'select', line: 'a CHECK %L' },
];

/**
 * The literal: a command that leaves a trace (a new mailbox) if the server
 * runs it; before login, a login first (which Dovecot would also run). The
 * first line is a sacrifice: where Dovecot reads into the literal as
 * arguments it skips to the first LF inside it (cmd-append.c), elsewhere it
 * is just one more bad command.
 */
const payload = (n: number, setup: Smuggle['setup'] = 'login') =>
  `x${n}\r\n${setup === 'none' ? `y${n} LOGIN alice secret\r\n` : ''}z${n} CREATE Smug${n}\r\n`;

async function prepare(port: number, setup: Smuggle['setup']): Promise<Raw> {
  const c = await raw(port);
  await c.until(GREETED);
  if (setup === 'none') return c;
  c.send('L LOGIN alice secret\r\n');
  await c.until('L OK');
  if (setup === 'select') {
    c.send('S SELECT INBOX\r\n');
    await c.until('S OK');
  }
  return c;
}

/** Sends the case with a {n+} literal holding the CREATE, then LOGOUT; resolves when the connection is closed. */
async function sendCase(port: number, k: Smuggle, n: number): Promise<string> {
  const c = await prepare(port, k.setup);
  const p = payload(n, k.setup);
  c.send(`${k.line.replace('%L', `{${p.length}+}`)}\r\n${p}${k.after ?? ''}\r\nq LOGOUT\r\n`);
  await Promise.race([c.closed, new Promise((r) => setTimeout(r, 5000))]);
  c.end();
  return c.received();
}

describe('imap hardening against a real Dovecot', () => {
  let dc: Dovecot;
  let w: Standalone;
  const exists = (n: number) => existsSync(join(dc.maildirOf('alice'), `.Smug${n}`));

  beforeAll(async () => {
    dc = await startDovecot();
    w = await startStandalone(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`]);
  }, 60_000);
  afterAll(async () => {
    await w?.stop();
    await dc?.stop();
  });

  CASES.forEach((k, i) => {
    it(`${k.name}: Dovecot runs the literal as a command; through the wrapper it never reaches Dovecot`, async () => {
      const direct = 100 + i;
      const wrapped = 200 + i;
      await sendCase(dc.imapPort, k, direct);
      await waitFor(() => exists(direct), `Dovecot to run the smuggled CREATE Smug${direct} (the case must reach its rejection path)`, 5000);
      const got = await sendCase(w.port, k, wrapped);
      expect(got).toMatch(/\r\na (BAD|NO) [^\r]*\r\n\* BYE Closing connection\r\n$/);
      expect(got).not.toContain(`z${wrapped} `);
      await new Promise((r) => setTimeout(r, 200));
      expect(exists(wrapped)).toBe(false);
    });
  });

  it('a literal where the grammar has a string is data for both (SEARCH CHARSET, LOGIN password): nothing in it runs', async () => {
    const n = 300;
    const p = payload(n);
    const c = await prepare(w.port, 'select');
    c.send(`a SEARCH CHARSET {${p.length}+}\r\n${p} ALL\r\nb NOOP\r\n`);
    await c.until('b OK');
    expect(c.received()).toMatch(/\r\na (NO|BAD) [^\r]*\r\n/);
    c.send('q LOGOUT\r\n');
    await c.closed;
    expect(exists(n)).toBe(false);
  });

  it('a burst of 200 pipelined commands is answered in full, as Dovecot answers it directly (no refusal)', async () => {
    const burst = Array.from({ length: 200 }, (_, k) => `n${k} NOOP\r\n`).join('');
    const answers = async (port: number): Promise<number> => {
      const c = await prepare(port, 'login');
      c.send(burst);
      await c.until('n199 OK');
      c.send('q LOGOUT\r\n');
      await c.closed;
      expect(c.received()).not.toMatch(/ BAD /);
      return (c.received().match(/^n\d+ OK/gm) ?? []).length;
    };
    expect(await answers(dc.imapPort)).toBe(200);
    expect(await answers(w.port)).toBe(200);
  });

  it("a command over Dovecot's 64 KiB limit (literals counted) never reaches it: Dovecot would run the rest as commands", async () => {
    const send = async (port: number, name: string): Promise<string> => {
      const c = await prepare(port, 'login');
      const head = 'a LIST "" (';
      const first = 65536 - (head.length + `{65517+}`.length);
      const p = `x CREATE ${name}\r\n`;
      c.send(`${head}{${first}+}\r\n${'A'.repeat(first)} X {${p.length}+}\r\n${p})\r\nq LOGOUT\r\n`);
      await Promise.race([c.closed, new Promise((r) => setTimeout(r, 5000))]);
      c.end();
      return c.received();
    };
    await send(dc.imapPort, 'SmugBig1');
    await waitFor(() => existsSync(join(dc.maildirOf('alice'), '.SmugBig1')), 'Dovecot to run the command after its "line too large" BAD', 5000);
    const got = await send(w.port, 'SmugBig2');
    expect(got).toMatch(/a NO \[TOOBIG\] [^\r]*\r\n\* BYE Closing connection\r\n$/);
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(join(dc.maildirOf('alice'), '.SmugBig2'))).toBe(false);
  });

  it('a CATENATE URL literal counts against the limit (Dovecot parses it, and answers a too long command mid-line)', async () => {
    const send = async (port: number, name: string): Promise<string> => {
      const c = await prepare(port, 'login');
      c.send(`a APPEND INBOX CATENATE (URL {65520+}\r\n${'A'.repeat(65520)}) {19+}\r\nx CREATE ${name}\r\n\r\nq LOGOUT\r\n`);
      await Promise.race([c.closed, new Promise((r) => setTimeout(r, 5000))]);
      c.end();
      return c.received();
    };
    await send(dc.imapPort, 'SmugCat01');
    await waitFor(() => existsSync(join(dc.maildirOf('alice'), '.SmugCat01')), 'Dovecot to run the command after its "line too large" BAD', 5000);
    const got = await send(w.port, 'SmugCat02');
    expect(got).toMatch(/a NO \[TOOBIG\] [^\r]*\r\n\* BYE Closing connection\r\n$/);
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(join(dc.maildirOf('alice'), '.SmugCat02'))).toBe(false);
  });

  it('APPEND answered early (a mailbox that does not exist): a synchronizing literal after the NO ends the command, no deadlock', async () => {
    const c = await prepare(w.port, 'login');
    c.send('a APPEND nosuchbox {5+}\r\nhello');
    await c.until('a NO');
    c.send(' {5}\r\n');
    c.send('b NOOP\r\n');
    await c.until('b OK');
    c.send('q LOGOUT\r\n');
    await c.closed;
  });
});

describe('imap hardening: SETMETADATA against a Dovecot with METADATA', () => {
  let dc: Dovecot;
  let w: Standalone;
  beforeAll(async () => {
    dc = await startDovecot({ extraConfig: 'mail_attribute_dict = file:%h/dovecot-attributes\nprotocol imap {\n  imap_metadata = yes\n}' });
    w = await startStandalone(['-p', 'imap', '--connect', `127.0.0.1:${dc.imapPort}`]);
  }, 60_000);
  afterAll(async () => {
    await w?.stop();
    await dc?.stop();
  });

  it('a literal as an entry name: Dovecot answers BAD, then reads it anyway; through the wrapper the line never reaches it', async () => {
    const run = async (port: number, name: string): Promise<string> => {
      const c = await prepare(port, 'login');
      expect(c.received()).toContain('METADATA');
      c.send('a SETMETADATA INBOX (/bad NIL {10}\r\n');
      await c.until('a ');
      await new Promise((r) => setTimeout(r, 200));
      const p = `x CREATE ${name}\r\n`;
      c.send(`bb1 LIST (SUBSCRIBED) "" {${p.length}+}\r\n${p}\r\nq LOGOUT\r\n`);
      await Promise.race([c.closed, new Promise((r) => setTimeout(r, 5000))]);
      c.end();
      return c.received();
    };
    await run(dc.imapPort, 'SmugMeta1');
    await waitFor(() => existsSync(join(dc.maildirOf('alice'), '.SmugMeta1')), 'Dovecot to run the command after the entry literal', 5000);
    const got = await run(w.port, 'SmugMeta2');
    expect(got).toMatch(/a BAD [^\r]*\r\n/);
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(join(dc.maildirOf('alice'), '.SmugMeta2'))).toBe(false);
  });
});
