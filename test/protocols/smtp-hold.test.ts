import { describe, expect, it } from 'vitest';
import { HOLD_BLOCK } from '../../src/core/hold.js';
import { BudgetedHoldStore } from '../../src/io/hold-store.js';
import { FakeSpool, textBytes } from '../helpers/fake-spool.js';
import { Harness, replyCodes, SEED } from './smtp-harness.js';

/**
 * Issue 13 item 6: held bodies share one process-wide budget. SmtpSession
 * driven through the mini shell with a small-budget store (the shell's own
 * BudgetedHoldStore, its spool in memory): past the budget a body spills,
 * past the spool too the message is refused 452 4.3.1 and the server gets
 * RSET; every byte of memory and disk comes back however the body ends.
 */

const EHLO = 'EHLO client.example\r\n';
const TX = 'MAIL FROM:<alice@client.example>\r\nRCPT TO:<bob@mydomain.org>\r\nDATA\r\n';
const CONFIG = { ...SEED, maxMsgSize: 4 << 20 };

function setup(memory: number, disk: number, serverChunk?: (s: Buffer) => Buffer[]) {
  const spool = new FakeSpool();
  const store = new BudgetedHoldStore({ memory, disk }, spool);
  const h = new Harness(CONFIG, {}, serverChunk, '192.0.2.7', store);
  const used = () => ({ memory: store.memory.used, disk: store.disk.used, files: store.openFiles, live: store.live });
  return { h, spool, store, used };
}

const ZERO = { memory: 0, disk: 0, files: 0, live: 0 };
/** A message body of about n bytes (CRLF lines, no dots), with its end. */
const body = (n: number, seed = 0) => textBytes(n, seed);
const END = '.\r\n';

describe('smtp held bodies: one budget per process, then the spool, then 452', () => {
  it('over the memory budget the body spills to the spool; the server gets exactly the bytes held; all is given back', () => {
    const { h, spool, used } = setup(2 * HOLD_BLOCK, 8 << 20);
    const msg = body(1 << 20);
    h.send(EHLO, TX, msg);
    expect(used().memory).toBe(2 * HOLD_BLOCK);
    expect(spool.files).toHaveLength(1);
    expect(used().disk).toBeGreaterThan(0);
    // Nothing has reached the server yet: it sees DATA only after the end of the data.
    expect(h.serverText).not.toContain('DATA');
    h.send(END, 'QUIT\r\n');
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '250', '221']);
    expect(h.server.messages).toHaveLength(1);
    expect(h.server.messages[0]!.equals(msg)).toBe(true);
    expect(used()).toEqual(ZERO);
    expect(spool.files[0]!.closed).toBe(true);
  });

  it('budget and spool both full: 452 4.3.1 at the end of the data, RSET to the server (no DATA), the session goes on', () => {
    const { h, used } = setup(HOLD_BLOCK, 2 * HOLD_BLOCK);
    h.send(EHLO, TX, body(1 << 20), END);
    expect(h.clientText).toContain('452 4.3.1 Insufficient system storage\r\n');
    expect(h.refusals()).toEqual(['no_storage']);
    expect(h.serverText).not.toContain('DATA');
    expect(h.serverText.endsWith('RSET\r\n')).toBe(true);
    expect(used()).toEqual(ZERO);
    // What was held is given back at once: a small message fits again.
    h.send(TX, 'Subject: small\r\n\r\nhi\r\n', END, 'QUIT\r\n');
    expect(replyCodes(h.clientText)).toEqual(['220', '250', '250', '250', '354', '452', '250', '250', '354', '250', '221']);
    expect(h.server.messages.map(String)).toEqual(['Subject: small\r\n\r\nhi\r\n']);
    expect(used()).toEqual(ZERO);
  });

  it('memory is given back as soon as a message is doomed (blocked body), not at its end', () => {
    const { h, used } = setup(64 * HOLD_BLOCK, 0);
    h.send(EHLO, TX, body(3 * HOLD_BLOCK));
    expect(used().memory).toBe(3 * HOLD_BLOCK);
    h.send('Content-Type: application/x; name="a.exe"\r\n');
    expect(used()).toEqual(ZERO);
    h.send(body(HOLD_BLOCK), END);
    expect(replyCodes(h.clientText).at(-1)).toBe('550');
    expect(used()).toEqual(ZERO);
  });

  it('two sessions share one store: the second spills while the first holds the memory', () => {
    const spool = new FakeSpool();
    const store = new BudgetedHoldStore({ memory: 4 * HOLD_BLOCK, disk: 8 << 20 }, spool);
    const a = new Harness(CONFIG, {}, undefined, '192.0.2.7', store);
    const b = new Harness(CONFIG, {}, undefined, '192.0.2.8', store);
    a.send(EHLO, TX, body(4 * HOLD_BLOCK - 10));
    expect(spool.files).toHaveLength(0);
    b.send(EHLO, TX, body(300_000, 1));
    expect(spool.files).toHaveLength(1);
    a.send(END);
    b.send(END);
    expect(a.server.messages[0]!.equals(body(4 * HOLD_BLOCK - 10))).toBe(true);
    expect(b.server.messages[0]!.equals(body(300_000, 1))).toBe(true);
    expect([store.memory.used, store.disk.used, store.openFiles, store.live]).toEqual([0, 0, 0, 0]);
  });

  it('the session ends mid-body (client gone, timeout): memory, disk and the spool file come back', () => {
    const { h, spool, used } = setup(HOLD_BLOCK, 8 << 20);
    h.send(EHLO, TX, body(500_000));
    expect(used().files).toBe(1);
    h.end();
    expect(used()).toEqual(ZERO);
    expect(spool.openCount).toBe(0);
  });

  it('the session ends after the end of the data, before the server\'s 354: the body waiting for it comes back', () => {
    let hold354 = true;
    const { h, used } = setup(HOLD_BLOCK, 8 << 20, (s) => (hold354 && s.toString().startsWith('354') ? [] : [s]));
    h.send(EHLO, TX, body(500_000), END);
    expect(h.serverText.endsWith('DATA\r\n')).toBe(true);
    expect(used().files).toBe(1);
    h.end();
    hold354 = false;
    expect(used()).toEqual(ZERO);
  });

  it('the server refuses our DATA: the held body is dropped at once', () => {
    const spool = new FakeSpool();
    const store = new BudgetedHoldStore({ memory: HOLD_BLOCK, disk: 8 << 20 }, spool);
    const h = new Harness(CONFIG, { refuseData: true }, undefined, '192.0.2.7', store);
    h.send(EHLO, TX, body(300_000), END);
    expect(replyCodes(h.clientText).at(-1)).toBe('451');
    expect([store.memory.used, store.disk.used, store.openFiles, store.live]).toEqual([0, 0, 0, 0]);
  });
});

describe('smtp: the server gone while a body is sent', () => {
  it('stopOnServerEnd: during DATA (held or streamed) and after an unsolicited 421; not between transactions', () => {
    const held = new Harness(CONFIG).send(EHLO, TX, 'Subject: x\r\n');
    expect(held.proto.state).toBe('data');
    expect(held.proto.stopOnServerEnd!()).toBe(true);
    expect(Buffer.concat(held.proto.serverEnd!() ?? []).toString()).toMatch(/^421 4\.3\.2 /);

    const timedOut = new Harness(CONFIG).send(EHLO, TX, 'Subject: x\r\n');
    // Postfix's smtpd_timeout while the wrapper holds the body: its 421 reaches the client.
    timedOut.deliver('421 4.4.2 mx.test.example Error: timeout exceeded\r\n');
    expect(timedOut.clientText.endsWith('421 4.4.2 mx.test.example Error: timeout exceeded\r\n')).toBe(true);
    expect(timedOut.proto.stopOnServerEnd!()).toBe(true);

    const idle = new Harness(CONFIG).send(EHLO);
    expect(idle.proto.stopOnServerEnd!()).toBe(false);
  });
});
