import { describe, expect, it } from 'vitest';
import { escapeForLog } from '../../src/log/escape.js';

describe('escapeForLog', () => {
  it('escapes CR, LF, NUL, control bytes, backslash and non-ASCII', () => {
    expect(escapeForLog(Buffer.from('a\r\nb\0\x1b\\\xff', 'latin1'))).toBe('a\\r\\nb\\x00\\x1b\\\\\\xff');
  });
  it('cuts at 200 input bytes and says how much was left out', () => {
    const s = escapeForLog(Buffer.alloc(1000, 0x41));
    expect(s).toBe('A'.repeat(200) + '...(+800 bytes)');
  });
});
