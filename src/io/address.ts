/** Shows an IPv4 client reached over an IPv6 socket (::ffff:a.b.c.d) as a.b.c.d. */
export function normaliseAddress(addr: string | undefined): string {
  if (!addr) return 'unknown';
  const lower = addr.toLowerCase();
  if (lower.startsWith('::ffff:') && lower.indexOf('.') > 0) return lower.slice(7);
  return lower;
}
