import { describe, expect, it } from 'vitest';
import { buildConfig, type Config } from '../../src/config.js';
import { ConfigError, ProtowrapError, UsageError } from '../../src/errors.js';
import { planListeners } from '../../src/io/daemon.js';
import { takePassedSockets } from '../../src/io/systemd.js';
import { buildServices, processFacility } from '../../src/services.js';

const svc = (o: Record<string, unknown>) => ({ name: 'a', listen: '127.0.0.1:1100', exec: 'cat', ...o });

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtowrapError) return `${e.code} ${e.message}`;
    throw e;
  }
  return 'no error';
}

const source = (c: Config, key: string) => c.effective.find((k) => k.key === key);

describe('multi-service files', () => {
  it('each service: its table over the top level, flags over both; sources say which', () => {
    const set = buildServices(
      {
        maxViolations: 3,
        idleTimeout: 60,
        maxAuthLineLength: 4096,
        service: [svc({ name: 'pop', protocol: 'pop3', listen: '1110' }), svc({ name: 'mx', protocol: 'smtp', listen: '127.0.0.1:2525', maxViolations: 1, exec: undefined, connect: '127.0.0.1:25' })],
      },
      { idleTimeout: 30 },
      { config: '/x.toml' },
    );
    expect(set.picked).toBe(false);
    const [pop, mx] = set.services as [Config, Config];
    expect(pop.service).toBe('pop');
    expect(pop.listen).toEqual({ host: null, port: 1110 });
    expect(pop.maxViolations).toBe(3);
    expect(mx.maxViolations).toBe(1);
    expect(mx.dest).toEqual({ type: 'tcp', host: '127.0.0.1', port: 25 });
    expect(pop.idleTimeoutMs).toBe(30_000);
    // A protocol's key at the top level is for the services of that protocol.
    expect(pop.options.extra['maxAuthLineLength']).toBe(4096);
    expect(Object.hasOwn(mx.options.extra, 'maxAuthLineLength')).toBe(false);
    expect(source(pop, 'maxViolations')).toEqual({ key: 'maxViolations', value: 3, source: 'file' });
    expect(source(mx, 'maxViolations')).toEqual({ key: 'maxViolations', value: 1, source: 'service' });
    expect(source(mx, 'idleTimeout')?.source).toBe('flag');
    expect(source(mx, 'sessionTimeout')).toEqual({ key: 'sessionTimeout', value: 14400, source: 'default' });
    expect(source(mx, 'maxLineLength')).toEqual({ key: 'maxLineLength', value: 510, source: 'default' });
    expect(source(mx, 'connect')).toEqual({ key: 'connect', value: '127.0.0.1:25', source: 'service' });
    expect(Object.isFrozen(mx)).toBe(true);
  });

  it('a service destination replaces the top-level one whole', () => {
    const set = buildServices({ destType: 'ip', destAddr: '127.0.0.1', destPort: 25, service: [svc({ exec: undefined }), svc({ name: 'b', listen: '2', exec: 'cat -n' })] }, {}, {});
    expect(set.services[0]!.dest).toEqual({ type: 'tcp', host: '127.0.0.1', port: 25 });
    expect(set.services[1]!.dest).toEqual({ type: 'exec', argv: ['cat', '-n'] });
  });

  it.each([
    ['an unknown key in a service table names the service and the key', { service: [svc({ maxLineLenght: 3 })] }, /^PW_ERR_CONFIG_UNKNOWN_KEY service a: maxLineLenght: unknown key/],
    ['a wrong type in a service table', { service: [svc({ maxViolations: 'x' })] }, /^PW_ERR_CONFIG_TYPE service a: maxViolations: expected an integer/],
    ['an unknown top-level key', { bogus: 1, service: [svc({})] }, /^PW_ERR_CONFIG_UNKNOWN_KEY bogus: unknown key/],
    ["a protocol key no service's protocol has", { maxLoginAttempts: 2, service: [svc({})] }, /^PW_ERR_CONFIG_UNKNOWN_KEY maxLoginAttempts: /],
    ['two services of one name', { service: [svc({}), svc({ listen: '2' })] }, /service a: name: given to two services/],
    ['two services on one address', { service: [svc({}), svc({ name: 'b' })] }, /service b: listen: 127\.0\.0\.1:1100 is also service a's/],
    ['two services on one systemd socket', { service: [svc({ listen: 'systemd:x' }), svc({ name: 'b', listen: 'systemd:x' })] }, /service b: listen: systemd:x is also/],
    ['a service without listen', { service: [svc({ listen: undefined })] }, /service a: listen: required/],
    ['a name with a space', { service: [svc({ name: 'a b' })] }, /service\.name: expected a name/],
    ['no name', { service: [{ listen: '1', exec: 'cat' }] }, /service\.name: /],
    ['standalone at the top level', { standalone: true, service: [svc({})] }, /standalone: not at the top level/],
    ['listenPort in a table', { service: [svc({ listenPort: 3 })] }, /service a: listenPort: use listen/],
    ['syslogFacility in a table (one per process)', { service: [svc({ syslogFacility: 'mail' })] }, /service a: syslogFacility: one per process/],
    ['connect and exec in one table', { service: [svc({ connect: 'a:1' })] }, /service a: connect\/exec: give one of them/],
    ['connect and destType in one table', { service: [svc({ exec: undefined, connect: 'a:1', destType: 'ip' })] }, /service a: destType: not used with connect/],
    ['a bad systemd socket name', { service: [svc({ listen: 'systemd:' })] }, /service a: listen: expected systemd:NAME/],
    ['service not a table list', { service: 3 }, /service: expected \[\[service\]\] tables/],
  ])('%s', (_what, file, re) => {
    expect(code(() => buildServices(file as Record<string, unknown>, {}, {}))).toMatch(re);
  });

  it('too many services', () => {
    const service = Array.from({ length: 65 }, (_, i) => svc({ name: `s${i}`, listen: String(1000 + i) }));
    expect(code(() => buildServices({ service }, {}, {}))).toMatch(/at most 64 services/);
  });

  it('--service picks one: its listen is not used, --connect and --listen apply to it; unknown names are refused', () => {
    const file = { service: [svc({}), svc({ name: 'b', listen: undefined })] };
    const one = buildServices(file, {}, { service: 'a', connect: '127.0.0.1:7' });
    expect(one.picked).toBe(true);
    expect(one.services.map((s) => s.service)).toEqual(['a']);
    expect(one.services[0]!.listen).toBeNull();
    expect(one.services[0]!.dest).toEqual({ type: 'tcp', host: '127.0.0.1', port: 7 });
    expect(buildServices(file, {}, { service: 'b', listen: '9' }).services[0]!.listen).toEqual({ host: null, port: 9 });
    expect(() => buildServices(file, {}, { service: 'c' })).toThrow(ConfigError);
    // Without --service, a flag destination names no service.
    expect(() => buildServices({ service: [svc({})] }, {}, { connect: 'a:1' })).toThrow(UsageError);
  });

  it("a protocol's flag applies to the services of that protocol; a flag no service can take is a usage error", () => {
    const file = { service: [svc({ protocol: 'pop3' }), svc({ name: 'b', listen: '2' })] };
    const set = buildServices(file, { maxLoginAttempts: 5 }, {});
    expect(set.services[0]!.options.extra['maxLoginAttempts']).toBe(5);
    expect(() => buildServices(file, { relayStrict: true }, {})).toThrow(UsageError);
  });

  it('a --protocol flag is every service\'s, and so are the keys of that protocol', () => {
    const set = buildServices({ maxLoginAttempts: 4, service: [svc({ protocol: 'smtp' }), svc({ name: 'b', listen: '2' })] }, { protocol: 'pop3' }, {});
    expect(set.services.map((c) => [c.protocol.name, c.options.extra['maxLoginAttempts']])).toEqual([
      ['pop3', 4],
      ['pop3', 4],
    ]);
  });

  it('the process facility: the one all services share, else daemon', () => {
    const mail = buildServices({ service: [svc({ protocol: 'pop3' }), svc({ name: 'b', listen: '2', protocol: 'smtp' })] }, {}, {});
    expect(processFacility(mail.services)).toBe('mail');
    const mixed = buildServices({ service: [svc({ protocol: 'pop3' }), svc({ name: 'b', listen: '2' })] }, {}, {});
    expect(processFacility(mixed.services)).toBe('daemon');
    const set = buildServices({ syslogFacility: 'local3', service: [svc({ protocol: 'pop3' }), svc({ name: 'b', listen: '2' })] }, {}, {});
    expect(processFacility(set.services)).toBe('local3');
  });
});

describe('--check sources for one configuration', () => {
  it('default, file, flag; a flag destination is shown as connect', () => {
    const c = buildConfig({ destType: 'pipe', pipeCmd: 'cat', maxLineLength: 25, idleTimeout: 5 }, { idleTimeout: 7 }, { connect: '[::1]:25' });
    expect(source(c, 'connect')).toEqual({ key: 'connect', value: '[::1]:25', source: 'flag' });
    expect(source(c, 'maxLineLength')).toEqual({ key: 'maxLineLength', value: 25, source: 'file' });
    expect(source(c, 'idleTimeout')).toEqual({ key: 'idleTimeout', value: 7, source: 'flag' });
    expect(source(c, 'shutdownGrace')).toEqual({ key: 'shutdownGrace', value: 30, source: 'default' });
    // The file's destination is replaced whole by the flag's.
    expect(source(c, 'pipeCmd')).toEqual({ key: 'pipeCmd', value: null, source: 'default' });
  });
});

describe('sockets passed by systemd (sd_listen_fds)', () => {
  it('LISTEN_FDS from fd 3 with their names, only for our pid; the variables are removed', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '42', LISTEN_FDS: '2', LISTEN_FDNAMES: 'pop3:smtp', OTHER: 'x' };
    expect(takePassedSockets(env, 42)).toEqual([
      { fd: 3, name: 'pop3' },
      { fd: 4, name: 'smtp' },
    ]);
    expect(env).toEqual({ OTHER: 'x' });
    const forParent: NodeJS.ProcessEnv = { LISTEN_PID: '41', LISTEN_FDS: '1' };
    expect(takePassedSockets(forParent, 42)).toEqual([]);
    expect(forParent).toEqual({});
    expect(takePassedSockets({ LISTEN_PID: '42', LISTEN_FDS: '1' }, 42)).toEqual([{ fd: 3, name: null }]);
    expect(takePassedSockets({}, 42)).toEqual([]);
  });

  it('a LISTEN_FDS that is no count, or past the bound, is a configuration error', () => {
    expect(() => takePassedSockets({ LISTEN_PID: '42', LISTEN_FDS: 'x' }, 42)).toThrow(ConfigError);
    expect(() => takePassedSockets({ LISTEN_PID: '42', LISTEN_FDS: '65' }, 42)).toThrow(/at most 64/);
  });

  it('plan: one configuration serves every passed socket; services take theirs by name; a left-over socket is an error', () => {
    const one = buildConfig(null, {}, { exec: 'cat' });
    const passed = [
      { fd: 3, name: 'pop3' },
      { fd: 4, name: 'smtp' },
    ];
    expect(planListeners([one], passed, false).map((p) => p.target)).toEqual([
      { kind: 'fd', fd: 3, name: 'pop3' },
      { kind: 'fd', fd: 4, name: 'smtp' },
    ]);
    const set = buildServices({ service: [svc({ name: 'mx', listen: 'systemd:smtp' }), svc({ name: 'own', listen: '127.0.0.1:7' })] }, {}, {});
    expect(code(() => planListeners(set.services, passed, true))).toMatch(/no service takes the socket systemd passed as pop3/);
    const plan = planListeners(set.services, passed.slice(1), true);
    expect(plan.map((p) => [p.cfg.service, p.target])).toEqual([
      ['mx', { kind: 'fd', fd: 4, name: 'smtp' }],
      ['own', { kind: 'address', address: { host: '127.0.0.1', port: 7 } }],
    ]);
    expect(code(() => planListeners(set.services, [], true))).toMatch(/service mx: listen: no socket named smtp from systemd \(LISTEN_FDNAMES: none\)/);
  });
});
