import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';

/**
 * The shipped service files (inetd.conf.example, xinetd.d/, systemd/) turned
 * into test configurations by substitution only, so that the tests run what a
 * user would copy: the listening port, the path of protowrap, the user and
 * the real server's address change; everything else is the example's.
 */
export interface Substitutions {
  /** Loopback port the superserver listens on. */
  readonly port: number;
  /** Path of the built wrapper, in place of /usr/local/bin/protowrap. */
  readonly wrapper: string;
  /** User the superserver runs protowrap as (the examples say nobody). */
  readonly user: string;
  /** host:port of the test's server, in place of the example's --connect target. */
  readonly connect?: string;
  /** The test's server command (one word), in place of the example's --exec target. */
  readonly exec?: string;
}

export const INSTALLED_PATH = '/usr/local/bin/protowrap';

/** One uncommented-able inetd.conf entry: its fields as written. */
export interface InetdEntry {
  readonly service: string;
  readonly user: string;
  readonly server: string;
  /** argv, argv[0] included, as inetd passes it. */
  readonly argv: string[];
}

/** The commented entries of inetd.conf.example ("#service stream tcp nowait user path argv..."). */
export function inetdEntries(example: string): InetdEntry[] {
  const out: InetdEntry[] = [];
  for (const raw of example.split('\n')) {
    if (!raw.startsWith('#')) continue;
    const f = raw.slice(1).trim().split(/\s+/);
    if (f.length < 7 || f[1] !== 'stream' || f[2] !== 'tcp' || f[3] !== 'nowait') continue;
    out.push({ service: f[0]!, user: f[4]!, server: f[5]!, argv: f.slice(6) });
  }
  return out;
}

/** The value following `flag` in argv. */
export function argAfter(argv: readonly string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** The example's argv with its server (--connect or --exec target) replaced by the test's. */
function withServer(argv: readonly string[], s: Substitutions): string[] {
  const out = [...argv];
  for (const [flag, target] of [['--connect', s.connect], ['--exec', s.exec]] as const) {
    const i = out.indexOf(flag);
    if (i < 0 || target === undefined) continue;
    out[i + 1] = target;
    return out;
  }
  throw new Error(`example has no --connect or --exec the test replaces: ${argv.join(' ')}`);
}

/** An inetd.conf with the example's entry for `protocol`, uncommented and substituted. */
export function inetdConf(example: string, protocol: string, s: Substitutions): string {
  const e = inetdEntries(example).find((x) => argAfter(x.argv, '--protocol') === protocol);
  if (!e) throw new Error(`inetd.conf.example has no entry for ${protocol}`);
  if (e.server !== INSTALLED_PATH) throw new Error(`unexpected server path ${e.server}`);
  return [`127.0.0.1:${s.port}`, 'stream', 'tcp', 'nowait', s.user, s.wrapper, ...withServer(e.argv, s)].join('\t') + '\n';
}

/** An xinetd service file's attributes, in order, as (name, operator, value). */
export function xinetdAttributes(file: string): { name: string; op: string; value: string }[] {
  const body = /\{([^}]*)\}/.exec(file);
  if (!body) throw new Error('no service block');
  const out: { name: string; op: string; value: string }[] = [];
  for (const line of body[1]!.split('\n')) {
    const m = /^\s*(\w+)\s*([+-]?=)\s*(.*?)\s*$/.exec(line);
    if (m) out.push({ name: m[1]!, op: m[2]!, value: m[3]! });
  }
  return out;
}

/**
 * The example xinetd service, enabled and substituted: listening on
 * 127.0.0.1:port (type UNLISTED, so the port need not be in /etc/services).
 */
export function xinetdConf(file: string, s: Substitutions, logFile: string): string {
  const name = /^service\s+(\S+)/m.exec(file)?.[1];
  if (!name) throw new Error('no service line');
  const set: Record<string, string> = { disable: 'no', type: 'UNLISTED', port: String(s.port), bind: '127.0.0.1', user: s.user };
  const attrs = xinetdAttributes(file).map((a) => {
    if (a.name in set) {
      const v = set[a.name]!;
      delete set[a.name];
      return `\t${a.name} = ${v}`;
    }
    if (a.name === 'server') {
      if (a.value !== INSTALLED_PATH) throw new Error(`unexpected server path ${a.value}`);
      return `\tserver = ${s.wrapper}`;
    }
    if (a.name === 'server_args') return `\tserver_args = ${withServer(a.value.split(/\s+/), s).join(' ')}`;
    return `\t${a.name} ${a.op} ${a.value}`;
  });
  for (const [k, v] of Object.entries(set)) attrs.push(`\t${k} = ${v}`);
  return `defaults\n{\n\tlog_type = FILE ${logFile}\n}\n\nservice ${name}\n{\n${attrs.join('\n')}\n}\n`;
}

/** `Key=value` lines of a systemd unit (the last one wins, as in systemd for these keys). */
export function unitKeys(unit: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** ExecStart of the example service as argv, with the test's substitutions. */
export function systemdArgv(service: string, s: Substitutions): string[] {
  const exec = unitKeys(service).get('ExecStart');
  if (!exec) throw new Error('no ExecStart');
  const argv = exec.split(/\s+/);
  if (argv[0] !== INSTALLED_PATH) throw new Error(`unexpected ExecStart path ${argv[0]}`);
  return [s.wrapper, ...withServer(argv.slice(1), s)];
}

/** True once something listens on 127.0.0.1:port (read from /proc, so no connection is made). */
function listening(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(hex.trim()) && cols[3] === '0A') return true;
    }
  }
  return false;
}

export interface Daemon {
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a superserver in the foreground and waits until it listens on port. */
export async function startDaemon(cmd: string, args: readonly string[], port: number): Promise<Daemon> {
  const child = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 10_000;
  while (!listening(port)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${cmd} exited (${child.exitCode}): ${out}`);
    if (Date.now() > deadline) throw new Error(`${cmd} did not listen on ${port}: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** One client session: connect, send everything, half-close, collect what comes back until the connection closes. */
export function clientSession(port: number, payload: Buffer, timeoutMs = 15_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`session on ${port} did not close; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    }, timeoutMs);
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    sock.on('end', () => sock.end());
    sock.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks));
    });
    sock.once('connect', () => sock.end(payload));
  });
}
