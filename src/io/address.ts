/**
 * Shows an IPv4 client reached over an IPv6 socket (::ffff:a.b.c.d) as
 * a.b.c.d, and drops an IPv6 zone (fe80::1%eth0 → fe80::1): the address is
 * what logs, relayIpList and a PROXY header to the server speak of (a zone
 * cannot go in a header, and a header without the address would make the
 * server take the wrapper's own loopback address for the client's).
 */
export function normaliseAddress(addr: string | undefined): string {
  if (!addr) return 'unknown';
  const pct = addr.indexOf('%');
  const lower = (pct >= 0 ? addr.slice(0, pct) : addr).toLowerCase();
  if (lower.startsWith('::ffff:') && lower.indexOf('.') > 0) return lower.slice(7);
  return lower;
}
