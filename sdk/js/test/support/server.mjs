// Starts a real `trusec` server for the tests: the workspace's binary
// (TRUSEC_BIN, or target/debug/trusec), SQLite in a fresh temp dir, a free
// port, and a secret API key made with `trusec keys create`.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
export const binary = process.env.TRUSEC_BIN ?? join(root, 'target/debug/trusec');

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** The environment of the child: none of the caller's TRUSEC_* settings leak in. */
function childEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TRUSEC_')) env[k] = v;
  return { ...env, TRUSEC_LOG: 'warn', ...extra };
}

export async function startServer(settings = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'trusec-sdk-'));
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const env = childEnv({ TRUSEC_BIND: `127.0.0.1:${port}`, TRUSEC_ISSUER: issuer, ...settings });
  const child = spawn(binary, ['serve'], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => {
    log = (log + d).slice(-4000);
  });
  const exited = new Promise((ok) => child.once('exit', ok));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`trusec exited (${child.exitCode}):\n${log}`);
    if (Date.now() > deadline) throw new Error(`trusec did not become healthy:\n${log}`);
    const up = await fetch(`${issuer}/healthz`).then((r) => r.ok, () => false);
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const cli = async (...args) => {
    const { stdout } = await promisify(execFile)(binary, args, { cwd: dir, env });
    return stdout.trim();
  };
  const secretKey = await cli('keys', 'create', '--type', 'secret', '--name', 'sdk-tests');
  const stop = async () => {
    child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  return { issuer, secretKey, cli, stop, log: () => log };
}
