import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitListening } from './nginx.js';
import { freePort } from './wrapper.js';

export interface Lighttpd {
  readonly port: number;
  /** Request lines lighttpd logged ($r), with status and bytes in. */
  requests(): { request: string; status: number }[];
  /** Stops lighttpd (it flushes its access log), keeping the folder for requests(). */
  stopOnly(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real lighttpd on a free loopback port, inside a temp dir: static files,
 * a CGI at /echo.sh that answers the request body it was given (lighttpd
 * de-chunks it first), and, when wsBackend is given, mod_wstunnel at /ws
 * relaying WebSocket payloads to that TCP backend.
 */
export async function startLighttpd(wsBackend?: number): Promise<Lighttpd> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-lighttpd-'));
  const root = join(dir, 'www');
  mkdirSync(root);
  mkdirSync(join(dir, 'tmp'));
  writeFileSync(join(root, 'index.html'), '<html><body>hello from lighttpd</body></html>\n');
  writeFileSync(join(root, 'echo.sh'), '#!/bin/sh\nprintf "Content-Type: application/octet-stream\\r\\n\\r\\n"\nexec cat\n');
  chmodSync(join(root, 'echo.sh'), 0o755);
  const port = await freePort();
  const log = join(dir, 'access.log');
  writeFileSync(
    join(dir, 'lighttpd.conf'),
    `server.document-root = "${root}"
server.bind = "127.0.0.1"
server.port = ${port}
server.errorlog = "${dir}/error.log"
server.upload-dirs = ( "${dir}/tmp" )
server.modules = ( "mod_access", "mod_accesslog", "mod_cgi"${wsBackend ? ', "mod_wstunnel"' : ''} )
accesslog.filename = "${log}"
accesslog.format = "%s|%r"
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html" )
cgi.assign = ( ".sh" => "" )
${wsBackend ? `$HTTP["url"] =~ "^/ws" { wstunnel.server = ( "" => (( "host" => "127.0.0.1", "port" => ${wsBackend} )) ) wstunnel.frame-type = "text" }` : ''}
`,
  );
  const child: ChildProcess = spawn('lighttpd', ['-D', '-f', join(dir, 'lighttpd.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  await waitListening(port, child, () => err + (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''));
  const stopOnly = () =>
    new Promise<void>((r) => {
      if (child.exitCode !== null || child.signalCode !== null) return r();
      child.once('exit', () => r());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
  return {
    port,
    requests: () =>
      existsSync(log)
        ? readFileSync(log, 'latin1')
            .split('\n')
            .filter((l) => l.length > 0)
            .map((l) => {
              const bar = l.indexOf('|');
              return { status: Number(l.slice(0, bar)), request: l.slice(bar + 1) };
            })
        : [],
    stopOnly,
    stop: async () => {
      await stopOnly();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
