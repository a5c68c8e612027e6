import { describe, expect, it } from 'vitest';
import { newSessionId } from '../../src/io/session-id.js';

describe('session ids', () => {
  it('are 12 hex digits, and 1000 of them (over several reads of the random source) are all different', () => {
    const ids = Array.from({ length: 1000 }, () => newSessionId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
