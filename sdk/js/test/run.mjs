// `npm test`: starts one trusec server for the whole suite, then runs every
// test/*.test.mjs with node's test runner against it.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer } from './support/server.mjs';

const dir = fileURLToPath(new URL('.', import.meta.url));
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.mjs'))
  .map((f) => `${dir}${f}`);
const srv = await startServer();
let code;
try {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=2', ...files, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, SDK_TEST_ISSUER: srv.issuer, SDK_TEST_SECRET_KEY: srv.secretKey },
  });
  code = await new Promise((ok) => child.once('exit', (c, signal) => ok(c ?? (signal ? 1 : 0))));
} finally {
  await srv.stop();
}
process.exit(code);
