/**
 * The user name of a SASL PLAIN response (RFC 4616: [authzid] NUL authcid
 * NUL passwd), for the log of a failed login. Only the authcid is taken:
 * the password after the second NUL never leaves this function. Anything
 * that is not PLAIN's shape (no second NUL, an empty authcid) gives null.
 * The input is base64 already checked by the protocol's own grammar; a
 * SASL line is bounded by the protocol's AUTH line limit, so is this.
 */
export function plainAuthcid(line: Buffer, start: number, end: number): string | null {
  if (end <= start) return null;
  const decoded = Buffer.from(line.toString('latin1', start, end), 'base64');
  const first = decoded.indexOf(0);
  if (first < 0) return null;
  const second = decoded.indexOf(0, first + 1);
  if (second < 0 || second === first + 1) return null;
  const user = decoded.toString('latin1', first + 1, second);
  decoded.fill(0);
  return user;
}

/** True when bytes [start, end) of line are the mechanism name PLAIN (case-insensitive). */
export function isPlainMechanism(line: Buffer, start: number, end: number): boolean {
  if (end - start !== 5) return false;
  const word = 'PLAIN';
  for (let i = 0; i < 5; i++) if ((line[start + i]! & 0xdf) !== word.charCodeAt(i)) return false;
  return true;
}
