import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTILE_TEXT, makeFingerd, type Fingerd } from '../helpers/fingerd.js';
import { clientSession } from '../helpers/superservers.js';
import { runPiped, startStandalone, waitFor, WRAPPER, type Standalone } from '../helpers/wrapper.js';

const ANSWER = {
  forwarding: 'finger: forwarding service denied\r\n',
  refused: 'finger: query refused\r\n',
  userList: 'finger: user list denied\r\n',
};

/** Python that sets lo up (no double quotes: it goes inside sh's double quotes). */
const LO_UP = [
  'import fcntl,socket,struct',
  's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)',
  "f=struct.unpack('16sH',fcntl.ioctl(s,0x8913,struct.pack('16sH',b'lo',0))[:18])[1]",
  "fcntl.ioctl(s,0x8914,struct.pack('16sH',b'lo',f|1))",
].join(';');

const closes = (logs: string) => logs.split('\n').filter((l) => l.includes('session close ')).length;

/**
 * The finger mode in front of the real in.fingerd (fingerd 0.17, spawned per
 * connection with --exec), queried by raw sockets and by the real finger
 * client. What in.fingerd received is read from its own finger program's
 * argv (see helpers/fingerd.ts).
 */
describe('finger in front of the real in.fingerd', () => {
  let dir: string;
  let fd: Fingerd;
  let w: Standalone;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-finger-'));
    fd = makeFingerd(dir);
    w = await startStandalone(['-p', 'finger', '--exec', fd.fingerd, '--log-level', '2']);
  });
  afterAll(async () => {
    await w?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** One session on the wrapper; resolves when the wrapper has reaped in.fingerd (its session close is logged). */
  async function session(query: string): Promise<{ reply: string; queries: string[] }> {
    const before = fd.queries().length;
    const done = closes(w.logs());
    const reply = (await clientSession(w.port, Buffer.from(query, 'latin1'))).toString('latin1');
    await waitFor(() => closes(w.logs()) > done, 'the session close');
    return { reply, queries: fd.queries().slice(before) };
  }

  const good: Array<[string, string, string, RegExp]> = [
    ['a user', 'root\r\n', '1:root', /^Login: root\s+Name: root\r\nDirectory: \/root\s+Shell: /],
    ['/W and a user', '/W nobody\r\n', '2:-l nobody', /^Login: nobody\s+Name: nobody\r\nDirectory: \/nonexistent\s+Shell: \/usr\/sbin\/nologin\r\n/],
    ['/w in lower case', '/w nobody\r\n', '2:-l nobody', /^Login: nobody\s/],
    ['the user list', '\r\n', '0:', /^(No one logged on\.|Login\s)/],
    ["/W alone, as finger -l @host sends it", '/W \r\n', '1:-l', /^(No one logged on\.|Login:)/],
    ['a user with trailing spaces', 'root  \r\n', '1:root', /^Login: root\s/],
  ];
  it.each(good)('%s: in.fingerd runs finger for it, the reply comes back', async (_n, query, argv, reply) => {
    const r = await session(query);
    expect(r.reply).toMatch(reply);
    expect(r.queries).toEqual([argv]);
  });

  /** Hostile queries: the wrapper's answer; in.fingerd, spawned for the session too, never runs finger. */
  const hostile: Array<[string, string, string]> = [
    ['forwarding', 'root@localhost\r\n', ANSWER.forwarding],
    ['a finger bomb', 'root@localhost@localhost@localhost\r\n', ANSWER.forwarding],
    ['the user list of another host', '@localhost\r\n', ANSWER.forwarding],
    ['two users', 'root nobody\r\n', ANSWER.refused],
    ['an option for finger (in.fingerd passes it on)', '-l nobody\r\n', ANSWER.refused],
    ['/W glued to the name (in.fingerd makes an option of it)', '/Wnobody\r\n', ANSWER.refused],
    ['an escape sequence', 'root\x1b[2J\r\n', ANSWER.refused],
    ['a TAB between two users', 'root\tnobody\r\n', ANSWER.refused],
    ['telnet negotiation', '\xff\xfb\x01root\r\n', ANSWER.refused],
    ['shell syntax', 'root;id\r\n', ANSWER.refused],
    ['a bare LF', 'root\n', ANSWER.refused],
    ['an overlong query', `${'a'.repeat(300)}\r\n`, ANSWER.refused],
    ['a query cut off by EOF', 'root', ANSWER.refused],
  ];
  it.each(hostile)('%s: refused with a line of text and a close; nothing reaches in.fingerd', async (_n, query, answer) => {
    const r = await session(query);
    expect(r.reply).toBe(answer);
    expect(r.queries).toEqual([]);
  });

  it('a second line after the query is refused and never reaches in.fingerd', async () => {
    const r = await session('root\r\nnobody\r\n');
    expect(r.reply).toMatch(/^Login: root\s/);
    expect(r.reply).not.toContain('nobody');
    expect(r.queries).toEqual(['1:root']);
    expect(w.logs()).toMatch(/refused client=127\.0\.0\.1 protocol=finger state=reply code=bad_state reason="one query per connection" line="nobody"/);
  });

  it('the refusals are logged with their code', () => {
    expect(w.logs()).toMatch(/refused client=127\.0\.0\.1 protocol=finger state=query code=forwarding reason="'@' at offset 4: finger forwarding" line="root@localhost"/);
    expect(w.logs()).toMatch(/code=bad_syntax reason="control byte 0x1b at offset 4" line="root\\x1b\[2J"/);
  });

  it('allowUserList = false: the empty query never reaches in.fingerd; a user still does', async () => {
    const before = fd.queries().length;
    const list = await runPiped(['-p', 'finger', '--no-allow-user-list', '--exec', fd.fingerd], '\r\n');
    expect(list.stdout.toString('latin1')).toBe(ANSWER.userList);
    expect(list.stderr).toMatch(/code=user_list/);
    const user = await runPiped(['-p', 'finger', '--no-allow-user-list', '--exec', fd.fingerd], '/W root\r\n');
    expect(user.stdout.toString('latin1')).toMatch(/^Login: root\s/);
    expect(fd.queries().slice(before)).toEqual(['2:-l root']);
  });

  it('control bytes in the reply (in.fingerd -p with a program that prints them) are removed, nothing else', async () => {
    const raw = await runPiped(['-p', 'generic', '--exec', fd.hostileFingerd], '/W root\r\n');
    // The real server sent them: the generic mode relays its bytes untouched.
    expect(raw.stdout.toString('latin1')).toBe(`args:-l|args:root|${HOSTILE_TEXT}`);
    const r = await runPiped(['-p', 'finger', '--exec', fd.hostileFingerd], '/W root\r\n');
    expect(r.stdout.toString('latin1')).toBe('args:-l|args:root|[2Jesc bell csi \xc3\xa9 ok\tend\n');
  });

  it('maxReplyBytes: the reply is cut at the cap and the session closed, logged', async () => {
    const full = (await runPiped(['-p', 'finger', '--exec', fd.fingerd], '/W root\r\n')).stdout;
    expect(full.length).toBeGreaterThan(64);
    const r = await runPiped(['-p', 'finger', '--max-reply-bytes', '64', '--exec', fd.fingerd], '/W root\r\n');
    expect(r.stdout.equals(full.subarray(0, 64))).toBe(true);
    expect(r.stderr).toMatch(/note client=stdin protocol=finger session=[0-9a-f]{12}: reply cut at 64 bytes \(maxReplyBytes\)/);
  });

  it('the server cannot be started: one line of text, then the close', async () => {
    const r = await runPiped(['-p', 'finger', '--exec', `${dir}/no-such-fingerd`], 'root\r\n');
    expect(r.stdout.toString('latin1')).toBe('finger: service unavailable\r\n');
    expect(r.stderr).toMatch(/server unavailable client=stdin protocol=finger/);
  });

  it('the real finger client (finger user@127.0.0.1, port 79 in a private network namespace)', () => {
    // finger(1) always dials port 79: the wrapper listens there inside a network namespace of its own.
    const script = `
set -e
# lo starts down in a new network namespace; up it without iproute2 (SIOCGIFFLAGS, SIOCSIFFLAGS | IFF_UP).
/usr/bin/python3 -c "${LO_UP}"
"${process.execPath}" "${WRAPPER}" -p finger --listen 127.0.0.1:79 --exec "${fd.fingerd}" --log-stderr 2>"${dir}/ns.log" &
pid=$!
i=0; while ! grep -q 'listening on' "${dir}/ns.log"; do i=$((i+1)); [ $i -lt 500 ] || exit 9; sleep 0.02; done
echo '== root'; finger root@127.0.0.1
echo '== -l nobody'; finger -l nobody@127.0.0.1
echo '== bomb'; finger root@localhost@127.0.0.1
kill $pid; wait $pid || true`;
    const before = fd.queries().length;
    const r = spawnSync('unshare', ['-n', 'sh', '-c', script], { encoding: 'latin1', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const [, root, nobody, bomb] = r.stdout.split(/^== .*\n/m);
    expect(root, r.stdout).toMatch(/^Login: root\s+Name: root\r\nDirectory: \/root\s/);
    expect(nobody, r.stdout).toMatch(/^Login: nobody\s+Name: nobody\r\nDirectory: \/nonexistent\s/);
    expect(bomb, r.stdout).toBe('finger: forwarding service denied\r\n');
    expect(fd.queries().slice(before)).toEqual(['1:root', '2:-l nobody']);
  });
});
