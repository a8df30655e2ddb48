// `npm pack` makes a package that installs and imports in a fresh directory,
// with its TypeScript declarations, and carries nothing but the build
// (dist/, built by scripts/check-sdk before the tests: hence --ignore-scripts).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const pkg = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const quiet = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

const work = await mkdtemp(join(tmpdir(), 'trusec-sdk-pack-'));
after(() => rm(work, { recursive: true, force: true }));

test('npm pack → npm install in a fresh directory → import, with types', async () => {
  const { stdout } = await run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: pkg, env: quiet });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('[')));
  const files = packed.files.map((f) => f.path).sort();
  assert.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), files.join());
  assert.ok(files.every((f) => f === 'package.json' || f === 'README.md' || f.startsWith('dist/')), files.join());

  const app = join(work, 'app');
  await run('mkdir', ['-p', app]);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run(npm, ['install', '--offline', join(work, packed.filename)], { cwd: app, env: quiet });
  assert.deepEqual(await readdir(join(app, 'node_modules')).then((d) => d.filter((x) => !x.startsWith('.'))), ['@trusec']);

  await writeFile(
    join(app, 'main.mjs'),
    `import { TruSec, TruSecError, generateCodeVerifier, generateCodeChallenge } from '@trusec/sdk';
const t = new TruSec({ issuer: 'https://auth.example.com', clientId: 'client_1' });
const v = generateCodeVerifier();
const url = t.oauth.getAuthorizationUrl({ redirectUri: 'https://app.example.com/cb', scope: ['openid'], state: 's', codeChallenge: await generateCodeChallenge(v) });
console.log(JSON.stringify({ url, error: new TruSecError({ type: 'x', message: 'y' }) instanceof Error }));
`,
  );
  const { stdout: out } = await run(process.execPath, ['main.mjs'], { cwd: app });
  const result = JSON.parse(out);
  assert.ok(result.url.startsWith('https://auth.example.com/oauth/authorize?'));
  assert.equal(result.error, true);

  // The shipped declarations type-check a typical use (with the SDK's own tsc).
  await writeFile(
    join(app, 'main.ts'),
    `import { TruSec, TruSecError, type TokenSet, type User } from '@trusec/sdk';
const t = new TruSec({ apiKey: 'trusec_sk_x', issuer: 'https://auth.example.com', clientId: 'c' });
export async function f(code: string): Promise<[TokenSet, User]> {
  const tokens = await t.oauth.exchangeCode({ code, redirectUri: 'https://app.example.com/cb' });
  const user = await t.users.get('user_1');
  for await (const e of t.auditEvents.list({ type: 'user.created' })) e.createdAt.toUpperCase();
  const v = await t.sessions.verify({ token: 't' });
  if (v.valid) v.user.email.toLowerCase(); else v.reason.toString();
  return [tokens, user];
}
export const e: TruSecError | undefined = undefined;
`,
  );
  const tsc = join(pkg, 'node_modules/typescript/bin/tsc');
  await run(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2022,dom', '--skipLibCheck', 'main.ts'], { cwd: app });
});
