import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecorder, type Recorder } from '../helpers/recorder.js';
import { runPiped } from '../helpers/wrapper.js';

describe('generic protocol, inetd mode with piped stdio', () => {
  let rec: Recorder;
  beforeAll(async () => {
    rec = await startRecorder({ banner: 'HELLO\r\n' });
  });
  afterAll(() => rec.close());

  it('forwards a good line and refuses an overlong one (the README by-hand session)', async () => {
    const input = Buffer.from(`hello\r\n${'0'.repeat(2000)}\r\n`);
    const r = await runPiped(['--exec', 'cat'], input);
    expect(r.code).toBe(0);
    expect(r.stdout.toString('latin1')).toBe('hello\r\n');
    expect(r.stderr).toMatch(/refused client=stdin protocol=generic state=relay code=line_too_long/);
  });

  it('relays a TCP server byte for byte and half-closes it', async () => {
    const r = await runPiped(['--connect', `127.0.0.1:${rec.port}`], 'one\r\ntwo\nthree\r\n');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('HELLO\r\n');
    const got = rec.received().at(-1)!;
    expect(got.toString('latin1')).toBe('one\r\ntwo\nthree\r\n');
  });
});
