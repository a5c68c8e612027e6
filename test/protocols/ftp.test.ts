import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sameAddress } from '../../src/core/ip.js';
import { parse227, parse229, parseEprtArg, parsePortArg } from '../../src/protocols/ftp/address.js';
import { REPLY_LINE_MAX } from '../../src/protocols/ftp/replies.js';
import { MAX_QUEUED } from '../../src/protocols/ftp/session.js';
import { ftpDriver, loggedIn, replyOf, word, type Driver } from './ftp.harness.js';

const b = (s: string) => Buffer.from(s, 'latin1');

function fresh(): Driver {
  const d = ftpDriver();
  d.server('220 (vsFTPd 3.0.3)\r\n');
  return d;
}

function afterUser(): Driver {
  const d = fresh();
  d.client('USER alice\r\n');
  d.server('331 Please specify the password.\r\n');
  return d;
}

function renaming(): Driver {
  const d = loggedIn(ftpDriver());
  d.client('RNFR a.txt\r\n');
  d.server('350 Ready for RNTO.\r\n');
  return d;
}

function restarting(): Driver {
  const d = loggedIn(ftpDriver());
  d.client('REST 100\r\n');
  d.server('350 Restart position accepted (100).\r\n');
  return d;
}

describe('ftp command table: (state, line) → verdict', () => {
  const cases: Array<[string, () => Driver, string, string, string?]> = [
    ['login', fresh, 'USER anonymous\r\n', 'forward+hold'],
    ['login', fresh, 'user anonymous\r\n', 'forward+hold'],
    ['login', fresh, 'USER\r\n', 'bad_argument', '501'],
    ['login', fresh, 'USER a\x01b\r\n', 'bad_argument', '501'],
    ['login', fresh, 'PASS secret\r\n', 'bad_state', '503'],
    ['login', fresh, 'LIST\r\n', 'bad_state', '530'],
    ['login', fresh, 'RETR x\r\n', 'bad_state', '530'],
    ['login', fresh, 'SITE CHMOD 644 x\r\n', 'bad_state', '530'],
    ['login', fresh, 'SITE EXEC /bin/sh\r\n', 'bad_state', '530'],
    ['login', fresh, 'PORT 192,0,2,7,4,1\r\n', 'bad_state', '530'],
    ['login', fresh, 'FEAT\r\n', 'forward+hold'],
    ['login', fresh, 'SYST\r\n', 'forward+hold'],
    ['login', fresh, 'NOOP\r\n', 'forward+hold'],
    ['login', fresh, 'QUIT\r\n', 'forward+hold'],
    ['login', fresh, 'OPTS UTF8 ON\r\n', 'forward+hold'],
    ['login', fresh, 'OPTS FOO BAR\r\n', 'bad_argument', '501'],
    ['login', fresh, 'AUTH TLS\r\n', 'not_supported', '502'],
    ['login', fresh, 'PBSZ 0\r\n', 'bad_state', '503'],
    ['login', fresh, 'XYZZY\r\n', 'unknown_command', '500'],
    ['login', fresh, 'HOST example.org\r\n', 'unknown_command', '500'],
    ['login', fresh, '\r\n', 'unknown_command', '500'],
    ['login', fresh, 'REIN\r\n', 'not_supported', '502'],
    ['login', fresh, 'CCC\r\n', 'not_supported', '502'],
    ['login', fresh, 'USER a\xffb\r\n', 'telnet_iac', '500'],
    ['login', fresh, '\xff\xf4\xff\xf2ABOR\r\n', 'telnet_iac', '500'],
    ['login', fresh, 'USER a\x00b\r\n', 'nul_byte', '500'],
    ['login', fresh, 'USER a\rb\r\n', 'bare_cr', '500'],
    ['login', fresh, 'USER anonymous\n', 'bare_lf', '500'],
    ['password', afterUser, 'PASS secret\r\n', 'forward+hold'],
    ['password', afterUser, 'PASS\r\n', 'forward+hold'],
    ['password', afterUser, 'PASS with spaces in it\r\n', 'forward+hold'],
    ['password', afterUser, 'LIST\r\n', 'bad_state', '503'],
    ['password', afterUser, 'USER bob\r\n', 'bad_state', '503'],
    ['password', afterUser, 'QUIT\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'LIST\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'LIST -la /pub\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'CWD a dir with spaces\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'CWD\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'CDUP x\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'TYPE I\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'TYPE A N\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'TYPE L 8\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'TYPE X\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'MODE S\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'STRU Q\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'REST 12345\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'REST -1\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'ALLO 100 R 10\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'RNTO b.txt\r\n', 'bad_state', '503'],
    ['ready', () => loggedIn(ftpDriver()), 'USER bob\r\n', 'bad_state', '503'],
    ['ready', () => loggedIn(ftpDriver()), 'SITE CHMOD 644 a.txt\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'site chmod 644 a.txt\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'SITE HELP\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'SITE EXEC /bin/sh\r\n', 'site_command', '500'],
    ['ready', () => loggedIn(ftpDriver()), 'SITE CPFR /etc/passwd\r\n', 'site_command', '500'],
    ['ready', () => loggedIn(ftpDriver()), 'SITE\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'EPSV\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'EPSV 2\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'EPSV 3\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'PASV\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'PORT 192,0,2,7,4,1\r\n', 'forward+hold+keep'],
    ['ready', () => loggedIn(ftpDriver()), 'PORT 192,0,2,7,4,0\r\n', 'forward+hold+keep'],
    ['ready', () => loggedIn(ftpDriver()), 'PORT 192,0,2,7,3,255\r\n', 'bounce', '500'],
    ['ready', () => loggedIn(ftpDriver()), 'PORT 192,0,2,7,0,25\r\n', 'bounce', '500'],
    ['ready', () => loggedIn(ftpDriver()), 'PORT 10,0,0,1,4,1\r\n', 'bounce', '500'],
    ['ready', () => loggedIn(ftpDriver()), 'PORT 127,0,0,1,4,1\r\n', 'bounce', '500'],
    ['ready', () => loggedIn(ftpDriver()), 'PORT 192,0,2,7,4\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'PORT 192,0,2,256,4,1\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'PORT 192, 0,2,7,4,1\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'EPRT |1|192.0.2.7|2000|\r\n', 'forward+hold+keep'],
    ['ready', () => loggedIn(ftpDriver()), 'EPRT !1!192.0.2.7!2000!\r\n', 'forward+hold+keep'],
    ['ready', () => loggedIn(ftpDriver()), 'EPRT |2|::ffff:192.0.2.7|2000|\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'EPRT |1|192.0.2.8|2000|\r\n', 'bounce', '500'],
    ['ready', () => loggedIn(ftpDriver()), 'EPRT |1|192.0.2.7|25|\r\n', 'bounce', '500'],
    ['ready', () => loggedIn(ftpDriver()), 'EPRT |2|2001:db8::1|2000|\r\n', 'bounce', '500'],
    ['ready', () => loggedIn(ftpDriver()), 'EPRT |3|x|2000|\r\n', 'bad_argument', '522'],
    ['ready', () => loggedIn(ftpDriver()), 'EPRT |1|192.0.2.7|70000|\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'EPRT |1|192.0.2.7|2000\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'MLSD\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'PRET RETR a.txt\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'PRET LIST\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'PRET DELE a.txt\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'NOOP 1\r\n', 'bad_argument', '501'],
    ['ready', () => loggedIn(ftpDriver()), 'MDTM a.txt\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'SIZE a.txt\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'XPWD\r\n', 'forward+hold'],
    ['ready', () => loggedIn(ftpDriver()), 'ADAT abc\r\n', 'not_supported', '502'],
    ['rename', renaming, 'RNTO b.txt\r\n', 'forward+hold'],
    ['rename', renaming, 'DELE a.txt\r\n', 'bad_state', '503'],
    ['rename', renaming, 'RETR a.txt\r\n', 'bad_state', '503'],
    ['restart', restarting, 'RETR a.txt\r\n', 'forward+hold'],
    ['restart', restarting, 'STOR a.txt\r\n', 'forward+hold'],
    ['restart', restarting, 'PASV\r\n', 'forward+hold'],
    ['restart', restarting, 'TYPE I\r\n', 'forward+hold'],
    ['restart', restarting, 'DELE a.txt\r\n', 'bad_state', '503'],
    ['restart', restarting, 'LIST\r\n', 'forward+hold'],
    ['restart', restarting, 'CWD x\r\n', 'bad_state', '503'],
    ['restart', restarting, 'REST 0\r\n', 'forward+hold'],
  ];
  it.each(cases)('%s: %j → %s %s', (_s, setup, line, expected, reply) => {
    const d = setup();
    const v = d.client(line);
    expect(word(v)).toBe(expected);
    if (reply) expect(replyOf(v).slice(0, 3)).toBe(reply);
  });
});

describe('ftp states follow the server', () => {
  it('USER 331 → password, PASS 230 → ready; RNFR 350 → rename, RNTO → ready; REST 350 → restart, RETR → ready', () => {
    const d = fresh();
    expect(d.session.state).toBe('login');
    d.client('USER a\r\n');
    d.server('331 Password.\r\n');
    expect(d.session.state).toBe('password');
    d.client('PASS b\r\n');
    d.server('230-Welcome\r\n230-to the server\r\n230 Login successful.\r\n');
    expect(d.session.state).toBe('ready');
    d.client('RNFR x\r\n');
    d.server('350 Ready for RNTO.\r\n');
    expect(d.session.state).toBe('rename');
    d.client('RNTO y\r\n');
    expect(d.session.state).toBe('ready');
    d.server('250 Rename successful.\r\n');
    d.client('RNFR x\r\n');
    d.server('550 RNFR command failed.\r\n');
    expect(d.session.state).toBe('ready');
    d.client('REST 5\r\n');
    d.server('350 Restart position accepted (5).\r\n');
    expect(d.session.state).toBe('restart');
    d.client('RETR x\r\n');
    expect(d.session.state).toBe('ready');
  });

  it('REST 0 (a probe of REST STREAM) leaves the session as it was', () => {
    const d = loggedIn(ftpDriver());
    d.client('REST 0\r\n');
    d.server('350 Restart position accepted (0).\r\n');
    expect(d.session.state).toBe('ready');
    expect(word(d.client('CWD pub\r\n'))).toBe('forward+hold');
  });

  it('USER 230 logs in at once; USER 530 stays before login', () => {
    const d = fresh();
    d.client('USER a\r\n');
    d.server('530 Permission denied.\r\n');
    expect(d.session.state).toBe('login');
    d.client('USER b\r\n');
    d.server('230 Login successful.\r\n');
    expect(d.session.state).toBe('ready');
  });

  it('PASS 332 asks for ACCT', () => {
    const d = afterUser();
    d.client('PASS b\r\n');
    d.server('332 Need account for login.\r\n');
    expect(d.session.state).toBe('account');
    expect(word(d.client('LIST\r\n'))).toBe('bad_state');
    expect(word(d.client('ACCT acc\r\n'))).toBe('forward+hold');
    d.server('230 Logged in.\r\n');
    expect(d.session.state).toBe('ready');
  });

  it('a command is held until the first line of its reply; a transfer is released at its 150', () => {
    const d = loggedIn(ftpDriver());
    d.client('RETR a.txt\r\n');
    expect(d.server('150 Opening BINARY mode data connection.\r\n').release).toBe(true);
    // ABOR while the transfer runs: forwarded, its reply comes after the transfer's.
    expect(word(d.client('ABOR\r\n'))).toBe('forward+hold');
    expect(d.server('426 Failure writing network stream.\r\n').release).toBeUndefined();
    expect(d.server('226 Abort successful.\r\n').release).toBe(true);
  });

  it('a refusal while a transfer runs is queued behind the transfer\'s final reply', () => {
    const d = loggedIn(ftpDriver());
    d.client('RETR a.txt\r\n');
    d.server('150 Opening.\r\n');
    const v = d.client('XYZZY\r\n');
    expect(v.kind === 'refuse' && v.reply === undefined).toBe(true);
    const done = d.server('226 Transfer complete.\r\n');
    expect(d.shown(done, '')).toBe('226 Transfer complete.\r\n500 Unknown command.\r\n');
  });

  it('refusals queued behind a transfer are bounded: at MAX_QUEUED the client is held until the server answers', () => {
    const d = loggedIn(ftpDriver({ maxViolations: 1000 }));
    d.client('RETR a.txt\r\n');
    d.server('150 Opening.\r\n');
    let held = 0;
    // The shell reads no more client lines after a hold: the loop stops there too.
    for (let i = 1; i <= MAX_QUEUED && held === 0; i++) {
      const v = d.client('XYZZY\r\n');
      if (v.kind === 'refuse' && v.hold) held = i;
    }
    // The transfer's reply and MAX_QUEUED - 1 refusals are owed.
    expect(held).toBe(MAX_QUEUED - 1);
    const done = d.server('226 Transfer complete.\r\n');
    expect(done.release).toBe(true);
    expect(d.shown(done, '').split('500 Unknown command.').length - 1).toBe(MAX_QUEUED - 1);
  });

  it('EPSV ALL: PORT, EPRT and PASV refused once the server agreed (RFC 2428 section 4)', () => {
    const d = loggedIn(ftpDriver());
    expect(word(d.client('EPSV ALL\r\n'))).toBe('forward+hold');
    d.server('200 EPSV ALL ok.\r\n');
    expect(replyOf(d.client('PASV\r\n')).slice(0, 3)).toBe('503');
    expect(word(d.client('PORT 192,0,2,7,4,1\r\n'))).toBe('bad_state');
    expect(word(d.client('EPRT |1|192.0.2.7|2000|\r\n'))).toBe('bad_state');
    expect(word(d.client('EPSV\r\n'))).toBe('forward+hold');
  });

  it('an overlong line: 500, the head shown as its first word only', () => {
    const d = fresh();
    const v = d.session.clientOverlong();
    expect(v.kind === 'refuse' && v.code === 'line_too_long' && v.secret === true).toBe(true);
    expect(replyOf(v)).toBe('500 Command line too long.\r\n');
  });

  it('credentials are hidden: PASS and ACCT, and any line after USER', () => {
    const d = afterUser();
    expect(d.session.lineSecrecy(b('PASS x\r\n'), 6)).toBe(true);
    expect(d.session.lineSecrecy(b('hunter2\r\n'), 7)).toBe('line');
    const r = loggedIn(ftpDriver());
    expect(r.session.lineSecrecy(b('PASS x\r\n'), 6)).toBe(true);
    expect(r.session.lineSecrecy(b('LIST\r\n'), 4)).toBe(false);
  });
});

describe('ftp maxLoginAttempts', () => {
  it('counts 530 to PASS; at the limit the 530 is passed on, then 421 and close; loginFailed names the user', () => {
    const d = ftpDriver({ maxLoginAttempts: 2 });
    d.server('220 ready\r\n');
    d.client('USER alice\r\n');
    d.server('331 Password.\r\n');
    d.client('PASS wrong1\r\n');
    const first = d.server('530 Login incorrect.\r\n');
    expect(first.loginFailed).toEqual({ user: 'alice' });
    expect(first.close).toBeUndefined();
    expect(d.session.state).toBe('login');
    d.client('USER bob\r\n');
    d.server('331 Password.\r\n');
    d.client('PASS wrong2\r\n');
    const last = d.server('530 Login incorrect.\r\n');
    expect(last.loginFailed).toEqual({ user: 'bob' });
    expect(last.close).toBe(true);
    expect(d.shown(last, '')).toBe('530 Login incorrect.\r\n421 Too many failed logins, closing control connection.\r\n');
  });

  it('a 530 to USER (the server refuses the name) is no failed PASS', () => {
    const d = ftpDriver({ maxLoginAttempts: 1 });
    d.server('220 ready\r\n');
    d.client('USER root\r\n');
    const v = d.server('530 Permission denied.\r\n');
    expect(v.loginFailed).toBeUndefined();
    expect(v.close).toBeUndefined();
  });
});

describe('ftp passive mode: the 227 / 229 are the wrapper\'s', () => {
  it('227: a data request for the server\'s port, the rest of the chunk returned, the client gets the wrapper\'s listener', () => {
    const d = loggedIn(ftpDriver());
    d.client('PASV\r\n');
    const v = d.server('227 Entering Passive Mode (127,0,0,1,156,64).\r\n');
    expect(v.data).toEqual({ kind: 'passive', serverHost: '127.0.0.1', serverPort: 40000, tls: false });
    expect(v.rest?.length).toBe(0);
    expect(d.shown(v, '')).toBe('');
    expect(v.release).toBeUndefined();
    const a = d.opened({ ok: true, kind: 'passive', host: '198.51.100.1', port: 50001 });
    expect(Buffer.concat(a.toClient ?? []).toString()).toBe('227 Entering Passive Mode (198,51,100,1,195,81).\r\n');
    expect(a.release).toBe(true);
  });

  it('the server\'s own words are kept, only the address is the wrapper\'s (curl tests 1349-1392 match the text)', () => {
    const d = loggedIn(ftpDriver());
    d.client('EPSV\r\n');
    d.server('229-Entering Passive Mode\r\n229 here (!!!40001!)\n');
    const a = d.opened({ ok: true, kind: 'passive', host: '198.51.100.1', port: 50002 });
    expect(Buffer.concat(a.toClient ?? []).toString()).toBe('229-Entering Passive Mode\r\n229 here (!!!50002!)\n');
  });

  it('a server that needs no login (230 greeting) is logged in', () => {
    const d = ftpDriver();
    d.server('230 Welcome, no login needed\r\n');
    expect(d.session.state).toBe('ready');
    expect(word(d.client('PWD\r\n'))).toBe('forward+hold');
  });

  it('pasvAddress is what a 227 announces', () => {
    const d = loggedIn(ftpDriver({ pasvAddress: '203.0.113.9' }));
    d.client('PASV\r\n');
    d.server('227 Entering Passive Mode (127,0,0,1,156,64).\r\n');
    const a = d.opened({ ok: true, kind: 'passive', host: '198.51.100.1', port: 50001 });
    expect(Buffer.concat(a.toClient ?? []).toString()).toBe('227 Entering Passive Mode (203,0,113,9,195,81).\r\n');
  });

  it('229, with bytes after it in the same chunk', () => {
    const d = loggedIn(ftpDriver());
    d.client('EPSV\r\n');
    const v = d.server('229 Entering Extended Passive Mode (|||40001|)\r\n150 x\r\n');
    expect(v.data).toEqual({ kind: 'passive', serverHost: null, serverPort: 40001, tls: false });
    expect(v.rest?.toString()).toBe('150 x\r\n');
    const a = d.opened({ ok: true, kind: 'passive', host: '198.51.100.1', port: 50002 });
    expect(Buffer.concat(a.toClient ?? []).toString()).toBe('229 Entering Extended Passive Mode (|||50002|)\r\n');
  });

  it('a reply the wrapper must see whole is bounded: a 227 line is cut at REPLY_LINE_MAX, still a line', () => {
    const d = loggedIn(ftpDriver());
    d.client('PASV\r\n');
    const long = `227 ${'x'.repeat(2000)} (127,0,0,1,4,1)\r\n`;
    const v = d.server(long);
    // The address lay past the cut: no data request; what the client gets is one line of REPLY_LINE_MAX bytes.
    expect(v.data).toBeUndefined();
    const shown = d.shown(v, '');
    expect(shown.length).toBe(REPLY_LINE_MAX);
    expect(shown.endsWith('\r\n')).toBe(true);
    expect(v.release).toBe(true);
  });

  it('a multi-line 227 past the collected-reply bound keeps its last line: the client still reads the reply\'s end', () => {
    const d = loggedIn(ftpDriver());
    d.client('PASV\r\n');
    const middle = `227-${'y'.repeat(400)}\r\n`.repeat(30);
    const v = d.server(`227-Entering Passive Mode\r\n${middle}227 Entering Passive Mode (127,0,0,1,156,64).\r\n`);
    // The lines past the bound are left out, the final line is kept: its address is read, and the reply ends.
    expect(v.data).toEqual({ kind: 'passive', serverHost: '127.0.0.1', serverPort: 40000, tls: false });
    const a = d.opened({ ok: true, kind: 'passive', host: '198.51.100.1', port: 50001 });
    const text = Buffer.concat(a.toClient ?? []).toString();
    expect(text.startsWith('227-Entering Passive Mode\r\n')).toBe(true);
    expect(text.endsWith('227 Entering Passive Mode (198,51,100,1,195,81).\r\n')).toBe(true);
    expect(text.length).toBeLessThan(8192 + REPLY_LINE_MAX);
    expect(a.release).toBe(true);
  });

  it('a listener that cannot be opened: 425', () => {
    const d = loggedIn(ftpDriver());
    d.client('EPSV\r\n');
    d.server('229 Entering Extended Passive Mode (|||40001|)\r\n');
    const a = d.opened({ ok: false, kind: 'passive', reason: 'no free port' });
    expect(Buffer.concat(a.toClient ?? []).toString()).toBe("425 Can't open data connection.\r\n");
    expect(a.release).toBe(true);
  });

  it('a refused PASV reply passes as it is, and so does a 227 without a usable address', () => {
    const d = loggedIn(ftpDriver());
    d.client('PASV\r\n');
    const v = d.server('500 no.\r\n');
    expect(d.shown(v, '')).toBe('500 no.\r\n');
    expect(v.release).toBe(true);
    d.client('PASV\r\n');
    expect(d.shown(d.server('227 nothing here\r\n'), '')).toBe('227 nothing here\r\n');
    d.client('PASV\r\n');
    // curl test 237: numbers over 255 are no address.
    expect(d.shown(d.server('227 Entering Passiv Mode (1216,256,2,127,127,127)\r\n'), '')).toBe('227 Entering Passiv Mode (1216,256,2,127,127,127)\r\n');
  });

  it('PASV on an IPv6 control connection: 425, use EPSV', () => {
    const d = loggedIn(ftpDriver({}, { clientAddress: '2001:db8::7', localAddress: '2001:db8::1' }));
    expect(replyOf(d.client('PASV\r\n'))).toContain('use EPSV');
    expect(word(d.client('EPSV\r\n'))).toBe('forward+hold');
  });

  it('a piped session has no data channel', () => {
    const d = loggedIn(ftpDriver({}, { clientAddress: 'stdin', localAddress: null }));
    expect(replyOf(d.client('PASV\r\n')).slice(0, 3)).toBe('425');
    expect(replyOf(d.client('PORT 1,2,3,4,5,6\r\n')).slice(0, 3)).toBe('425');
  });
});

describe('ftp active mode: the server gets the wrapper\'s PORT', () => {
  it('PORT: a data request for the client\'s address, then the wrapper\'s own PORT to the server; its 200 releases the client', () => {
    const d = loggedIn(ftpDriver());
    const v = d.client('PORT 192,0,2,7,200,10\r\n');
    expect(v.kind === 'forward' && v.data).toEqual({ kind: 'active', clientHost: '192.0.2.7', clientPort: 51210, tls: false });
    const a = d.opened({ ok: true, kind: 'active', host: '127.0.0.1', port: 40100 });
    expect(Buffer.concat(a.toServer ?? []).toString()).toBe('PORT 127,0,0,1,156,164\r\n');
    const r = d.server('200 PORT command successful. Consider using PASV.\r\n');
    expect(r.release).toBe(true);
    expect(d.shown(r, '200 PORT command successful. Consider using PASV.\r\n')).toContain('200 PORT');
  });

  it('PORT: the next transfer command arms the active listener (the server connects only after it); the one after, and passive transfers, do not', () => {
    const d = loggedIn(ftpDriver());
    d.client('PORT 192,0,2,7,200,10\r\n');
    d.opened({ ok: true, kind: 'active', host: '127.0.0.1', port: 40100 });
    d.server('200 PORT command successful.\r\n');
    const retr = d.client('RETR f\r\n');
    expect(retr.kind === 'forward' && retr.data).toEqual({ kind: 'transfer' });
    expect(d.opened({ ok: false, kind: 'transfer', reason: 'armed' })).toEqual({});
    d.server('150 Opening.\r\n226 Done.\r\n');
    const again = d.client('RETR f\r\n');
    expect(again.kind === 'forward' && again.data).toBe(undefined);
    d.server('425 Use PORT or PASV first.\r\n');
    // A PASV's listener replaces a PORT's that was never used.
    d.client('PORT 192,0,2,7,200,10\r\n');
    d.opened({ ok: true, kind: 'active', host: '127.0.0.1', port: 40100 });
    d.server('200 PORT command successful.\r\n');
    d.client('PASV\r\n');
    d.server('227 Entering Passive Mode (127,0,0,1,156,165).\r\n');
    d.opened({ ok: true, kind: 'passive', host: '127.0.0.1', port: 40200 });
    const list = d.client('LIST\r\n');
    expect(list.kind === 'forward' && list.data).toBe(undefined);
  });

  it('PORT, then a transfer the server refuses (550, no 1xx): the listener is disarmed, the client released by the answer, the next transfer arms it again', () => {
    const d = loggedIn(ftpDriver());
    d.client('PORT 192,0,2,7,200,10\r\n');
    d.opened({ ok: true, kind: 'active', host: '127.0.0.1', port: 40100 });
    d.server('200 PORT command successful.\r\n');
    d.client('RETR nothing\r\n');
    d.opened({ ok: false, kind: 'transfer', reason: 'armed' });
    const r = d.server('550 Failed to open file.\r\n');
    expect(r.data).toEqual({ kind: 'transfer-refused' });
    expect(r.release).toBe(undefined);
    expect(d.opened({ ok: false, kind: 'transfer-refused', reason: 'disarmed' })).toEqual({ release: true });
    const again = d.client('RETR f\r\n');
    expect(again.kind === 'forward' && again.data).toEqual({ kind: 'transfer' });
    // Its 150 comes: nothing to disarm.
    expect(d.server('150 Opening.\r\n').data).toBe(undefined);
  });

  it('EPRT gets an EPRT; minDataPort is configurable', () => {
    const d = loggedIn(ftpDriver({ minDataPort: 40000 }));
    expect(word(d.client('EPRT |1|192.0.2.7|30000|\r\n'))).toBe('bounce');
    d.client('EPRT |1|192.0.2.7|40000|\r\n');
    const a = d.opened({ ok: true, kind: 'active', host: '127.0.0.1', port: 40100 });
    expect(Buffer.concat(a.toServer ?? []).toString()).toBe('EPRT |1|127.0.0.1|40100|\r\n');
  });

  it('an IPv6 client: EPRT |2| to its own address only; a v4-mapped control address compares as IPv4', () => {
    const d6 = loggedIn(ftpDriver({}, { clientAddress: '2001:db8::7', localAddress: '2001:db8::1' }));
    expect(word(d6.client('EPRT |2|2001:DB8:0:0::7|2000|\r\n'))).toBe('forward+hold+keep');
    const d4 = loggedIn(ftpDriver({}, { clientAddress: '192.0.2.7' }));
    expect(word(d4.client('EPRT |2|2001:db8::7|2000|\r\n'))).toBe('bounce');
  });
});

describe('ftp FEAT is filtered to what the wrapper follows', () => {
  const FEAT = '211-Features:\r\n AUTH TLS\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n PBSZ\r\n PROT\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n SITE EXEC\r\n CLNT\r\n211 End\r\n';
  it('without --tls: the server\'s AUTH, PBSZ, PROT and unknown features dropped', () => {
    const d = loggedIn(ftpDriver());
    d.client('FEAT\r\n');
    expect(d.shown(d.server(FEAT), FEAT)).toBe('211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n');
  });
  it('with --tls starttls: the wrapper\'s AUTH TLS, PBSZ, PROT added; "211 no features" becomes a list', () => {
    const d = ftpDriver({ tls: 'starttls', tlsCert: '/x', tlsKey: '/y' }, { tls: 'starttls' });
    d.server('220 ready\r\n');
    d.client('FEAT\r\n');
    expect(d.shown(d.server('211 no features\r\n'), '')).toBe('211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n211 End\r\n');
    d.client('FEAT\r\n');
    expect(d.shown(d.server(FEAT), FEAT)).toContain(' UTF8\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n211 End\r\n');
  });
});

describe('ftp AUTH TLS / PBSZ / PROT (RFC 4217), answered by the wrapper', () => {
  it('AUTH TLS: 234 and startTls; PBSZ, PROT P answered; PORT then asks for TLS on the data connection', () => {
    const d = ftpDriver({ tls: 'starttls', tlsCert: '/x', tlsKey: '/y' }, { tls: 'starttls' });
    d.server('220 ready\r\n');
    expect(word(d.client('PROT P\r\n'))).toBe('bad_state');
    const v = d.client('AUTH TLS\r\n');
    expect(v.kind === 'forward' && v.startTls && v.keep && v.toClient?.toString()).toBe('234 Proceed with negotiation.\r\n');
    expect(word(d.client('AUTH TLS\r\n'))).toBe('not_supported');
    expect(replyOf(d.client('PROT P\r\n'))).toBe('503 PBSZ first.\r\n');
    const p = d.client('PBSZ 0\r\n');
    expect(p.kind === 'forward' && p.keep && p.toClient?.toString()).toBe('200 PBSZ=0\r\n');
    expect(replyOf(d.client('PROT S\r\n')).slice(0, 3)).toBe('536');
    const q = d.client('PROT P\r\n');
    expect(q.kind === 'forward' && q.toClient?.toString()).toBe('200 Protection level set to P.\r\n');
    loggedIn(d);
    const port = d.client('PORT 192,0,2,7,4,1\r\n');
    expect(port.kind === 'forward' && port.data?.kind === 'active' && port.data.tls).toBe(true);
  });

  it('tls = require: USER before AUTH TLS refused with 530', () => {
    const d = ftpDriver({ tls: 'require', tlsCert: '/x', tlsKey: '/y' }, { tls: 'require' });
    d.server('220 ready\r\n');
    expect(replyOf(d.client('USER anonymous\r\n')).slice(0, 3)).toBe('530');
    expect(word(d.client('AUTH SSL\r\n'))).toBe('forward+keep');
  });

  it('AUTH after USER is out of sequence', () => {
    const d = ftpDriver({ tls: 'starttls', tlsCert: '/x', tlsKey: '/y' }, { tls: 'starttls' });
    d.server('220 ready\r\n');
    d.client('USER a\r\n');
    d.server('331 Password.\r\n');
    expect(word(d.client('AUTH TLS\r\n'))).toBe('bad_state');
    d.client('PASS b\r\n');
    d.server('530 no\r\n');
    // Back before USER on the server too: AUTH is in sequence again.
    expect(word(d.client('AUTH TLS\r\n'))).toBe('forward+keep');
  });
});

describe('ftp host-port grammars', () => {
  it('PORT, EPRT, 227, 229', () => {
    expect(parsePortArg(b('1,2,3,4,5,6'), 0, 11)).toEqual({ host: '1.2.3.4', port: 1286, family: 4 });
    expect(typeof parsePortArg(b('1,2,3,4,5'), 0, 9)).toBe('string');
    expect(typeof parsePortArg(b('1,2,3,4,5,6,7'), 0, 13)).toBe('string');
    expect(typeof parsePortArg(b('1,2,3,4,5,1000'), 0, 14)).toBe('string');
    expect(parseEprtArg(b('|2|::1|21|'), 0, 10)).toEqual({ host: '::1', port: 21, family: 6 });
    expect(parseEprtArg(b('|1|::1|21|'), 0, 10)).toBe('bad address');
    expect(parse227(b('227 Entering Passive Mode (10,1,2,3,4,5)'))).toEqual({ host: '10.1.2.3', port: 1029, from: 27, to: 39 });
    expect(parse227(b('227 =10,1,2,3,4,5'))).toEqual({ host: '10.1.2.3', port: 1029, from: 5, to: 17 });
    expect(parse229(b('229 Entering Extended Passive Mode (|||6446|)'))).toEqual({ host: null, port: 6446, from: 39, to: 43 });
    expect(parse229(b('229 (|||0|)'))).toBeNull();
    expect(sameAddress('::ffff:192.0.2.7', '192.0.2.7')).toBe(true);
    expect(sameAddress('2001:db8::1', '2001:0db8:0:0:0:0:0:1')).toBe(true);
    expect(sameAddress('192.0.2.7', '192.0.2.70')).toBe(false);
    expect(sameAddress('stdin', 'stdin')).toBe(false);
  });
});

describe('ftp replies: any chunking gives the same bytes and the same state', () => {
  const SERVER = [
    '220-Welcome\r\n220-to this server\r\n220 ready\r\n',
    '331 Please specify the password.\r\n',
    '230 Login successful.\r\n',
    '211-Features:\r\n EPSV\r\n AUTH TLS\r\n211 End\r\n',
    '150 Here comes the directory listing.\r\n226 Directory send OK.\r\n',
  ];
  const CLIENT = ['USER a\r\n', 'PASS b\r\n', 'FEAT\r\n', 'LIST\r\n'];
  /** Runs the dialogue with the server's bytes cut at the given points; returns what the client saw. */
  function run(cuts: number[]): { shown: string; state: string } {
    const d = ftpDriver();
    let shown = '';
    const feed = (s: string) => {
      const points = [...new Set(cuts.filter((c) => c > 0 && c < s.length))].sort((x, y) => x - y);
      let at = 0;
      for (const p of [...points, s.length]) {
        const part = s.slice(at, p);
        shown += d.shown(d.server(part), part);
        at = p;
      }
    };
    feed(SERVER[0]!);
    for (let i = 0; i < CLIENT.length; i++) {
      d.client(CLIENT[i]!);
      feed(SERVER[i + 1]!);
    }
    return { shown, state: d.session.state };
  }
  const whole = run([]);
  it('whole', () => {
    expect(whole.state).toBe('ready');
    expect(whole.shown).not.toContain('AUTH TLS');
    expect(whole.shown).toContain(' EPSV\r\n');
  });
  it('every single cut point', () => {
    for (let c = 1; c < 60; c++) expect(run([c])).toEqual(whole);
  });
  it('random cuts (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 60 }), { maxLength: 12 }), (cuts) => {
        expect(run(cuts)).toEqual(whole);
      }),
    );
  });
});
