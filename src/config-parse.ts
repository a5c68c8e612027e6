import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Destination, ListenAddress, ProxyPeer, RawOptions } from './config.js';
import { ConfigError, expected } from './errors.js';

/**
 * The parsers under the configuration: the TOML file, and the address forms
 * of --connect, --listen and proxyFrom. Each error names its key.
 */

/** Reads a TOML file. smol-toml is loaded only when a file is given (start-up time). */
export async function readConfigFile(path: string): Promise<RawOptions> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('PW_ERR_CONFIG_FILE', path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const { parse } = await import('smol-toml');
  let doc: Record<string, unknown>;
  try {
    // Integers as BigInt: the only way to tell TOML's 25 from 25.0 (a float) and to see 2^64.
    doc = parse(text, { integersAsBigInt: true });
  } catch (err) {
    throw new ConfigError('PW_ERR_CONFIG_FILE', path, `not valid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, fromToml(k, v)]));
}

/** TOML integers become numbers (in the safe range); no option takes a float. */
function fromToml(key: string, v: unknown): unknown {
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new ConfigError('PW_ERR_CONFIG_VALUE', key, `integer ${v} is out of range`);
    }
    return Number(v);
  }
  if (typeof v === 'number') throw new ConfigError('PW_ERR_CONFIG_TYPE', key, `no option takes a float, got ${v}`);
  if (Array.isArray(v)) return v.map((x) => fromToml(key, x));
  // A [[service]] table: its keys are converted the same way.
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, fromToml(k, x)]));
  }
  return v;
}

/** host:port, [v6]:port or unix:/path. */
export function parseConnect(s: string, key = '--connect'): Destination {
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    if (!path.startsWith('/')) throw new ConfigError('PW_ERR_CONFIG_DEST', key, expected('unix:/absolute/path', s));
    return { type: 'unix', path };
  }
  const hp = splitHostPort(s);
  if (!hp || hp.host === null) throw new ConfigError('PW_ERR_CONFIG_DEST', key, expected('host:port, [v6addr]:port or unix:/path', s));
  return { type: 'tcp', host: hp.host, port: hp.port };
}

/** [addr:]port for --listen. */
export function parseListen(s: string, key = '--listen'): ListenAddress {
  const hp = /^\d+$/.test(s) ? { host: null, port: Number(s) } : splitHostPort(s);
  if (!hp || hp.port < 1 || hp.port > 65535) throw new ConfigError('PW_ERR_CONFIG_VALUE', key, expected('[addr:]port', s));
  return hp;
}

function splitHostPort(s: string): { host: string | null; port: number } | null {
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') return null;
    host = s.slice(1, close);
    if (isIP(host) !== 6) return null;
    portText = s.slice(close + 2);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon <= 0 || s.indexOf(':') !== colon) return null;
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
  }
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  return { host, port };
}

/** A proxyFrom entry: an address, or a CIDR block. */
export function parseProxyPeer(raw: string): ProxyPeer {
  const slash = raw.indexOf('/');
  const net = slash < 0 ? raw : raw.slice(0, slash);
  const family = isIP(net);
  if (family === 0) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'proxyFrom', expected('an address or CIDR block', raw));
  const max = family === 4 ? 32 : 128;
  const bitsText = slash < 0 ? String(max) : raw.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) throw new ConfigError('PW_ERR_CONFIG_VALUE', 'proxyFrom', expected(`a prefix length 0..${max}`, raw));
  return { net, bits: Number(bitsText), family: family as 4 | 6 };
}
