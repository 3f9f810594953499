// The built server on SQLite: migrations, /health, the video routes, start-up switches.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  appDir,
  checkHealthy,
  checkVideoRoutes,
  migrateDeploy,
  prisma,
  request,
  runServerToExit,
  startServer,
  tempDir,
} from './helpers.mjs';

test('migrate deploy on an empty SQLite database, then /health and the video routes', async (t) => {
  const dir = tempDir(t, 'backend-sqlite-');
  const databaseUrl = `file:${path.join(dir, 'app.db')}`;

  const first = await migrateDeploy(databaseUrl);
  assert.match(first, /20250601120000_create_video/);
  assert.match(first, /20250608120000_add_video_duration/);
  assert.match(first, /All migrations have been successfully applied/);
  assert.ok(fs.existsSync(path.join(dir, 'app.db')), 'the database file is where DATABASE_URL says');
  assert.match(await migrateDeploy(databaseUrl), /No pending migrations to apply/, 'a second deploy is a no-op');

  const server = await startServer(t, { DATABASE_URL: databaseUrl, RELEASE_ID: 'abc123def456' });
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'binds 127.0.0.1 unless HOST is set');
  await checkHealthy(assert, server.url, 'abc123def456');
  await checkVideoRoutes(assert, server.url);

  // Expand-only: a row written the way the previous release writes it (no durationSeconds) still
  // works after the second migration.
  const insert = await prisma(
    ['db', 'execute', '--stdin', '--schema', 'prisma/sqlite/schema.prisma'],
    databaseUrl,
    `INSERT INTO "Video" ("title", "createdAt") VALUES ('from the previous release', '2025-06-01T12:00:00.000+00:00');`,
  );
  assert.equal(insert.status, 0, insert.output);
  const list = await request(`${server.url}/videos`);
  assert.deepEqual(
    { title: list.json[0].title, durationSeconds: list.json[0].durationSeconds, createdAt: list.json[0].createdAt },
    { title: 'from the previous release', durationSeconds: 0, createdAt: '2025-06-01T12:00:00.000Z' },
  );

  server.child.kill('SIGTERM');
  assert.deepEqual(await server.waitForExit(), { code: 0, signal: null }, 'SIGTERM exits 0');
});

test('the SQLite migrations produce exactly the schema (no drift)', async (t) => {
  // The diff replays the migrations on an in-memory shadow database, but the CLI opens DATABASE_URL too.
  const databaseUrl = `file:${path.join(tempDir(t, 'backend-diff-'), 'unused.db')}`;
  const result = await prisma(
    ['migrate', 'diff', '--from-migrations', 'prisma/sqlite/migrations', '--to-schema-datamodel', 'prisma/sqlite/schema.prisma', '--exit-code'],
    databaseUrl,
  );
  assert.equal(result.status, 0, `schema.prisma and the migrations differ:\n${result.output}`);
});

test('the two schemas declare the same models', () => {
  const models = (provider) =>
    fs
      .readFileSync(path.join(appDir, 'prisma', provider, 'schema.prisma'), 'utf8')
      .split(/^model /m)
      .slice(1)
      .join('\nmodel ');
  assert.equal(models('postgresql'), models('sqlite'));
});

test('HOST and RELEASE_ID are honoured; /health says release null without RELEASE_ID', async (t) => {
  const dir = tempDir(t, 'backend-sqlite-');
  const databaseUrl = `file:${path.join(dir, 'app.db')}`;
  await migrateDeploy(databaseUrl);
  const server = await startServer(t, { DATABASE_URL: databaseUrl, HOST: 'localhost' });
  assert.match(server.url, /^http:\/\/localhost:\d+$/);
  await checkHealthy(assert, `http://127.0.0.1:${server.port}`, null);
});

test('start fails with a clear message when DATABASE_URL is unset or not a supported URL', () => {
  let result = runServerToExit({});
  assert.equal(result.status, 1);
  assert.match(result.output, /cannot start: invalid configuration:\n\s+DATABASE_URL is not set/);

  result = runServerToExit({ DATABASE_URL: 'mysql://db/app', PORT: '80a' });
  assert.equal(result.status, 1);
  assert.match(result.output, /DATABASE_URL: expected a file: URL \(SQLite\) or a postgres/);
  assert.match(result.output, /PORT: expected an integer 0-65535, got "80a"/);
});

test('CRASH_ON_START=1 exits non-zero before listening', () => {
  const result = runServerToExit({ DATABASE_URL: 'file:./never-opened.db', CRASH_ON_START: '1' });
  assert.notEqual(result.status, 0);
  assert.match(result.output, /CRASH_ON_START=1/);
  assert.doesNotMatch(result.output, /listening on/);
});

test('HEALTH_FAIL=1 makes /health answer 503 while the routes still work', async (t) => {
  const dir = tempDir(t, 'backend-sqlite-');
  const databaseUrl = `file:${path.join(dir, 'app.db')}`;
  await migrateDeploy(databaseUrl);
  const server = await startServer(t, { DATABASE_URL: databaseUrl, HEALTH_FAIL: '1', RELEASE_ID: 'bad' });
  const res = await request(`${server.url}/health`);
  assert.equal(res.status, 503);
  assert.equal(res.json.status, 'error');
  assert.equal(res.json.release, 'bad');
  assert.equal((await request(`${server.url}/videos`)).status, 200);
});

test('/health answers 503 when the database cannot be opened', async (t) => {
  const dir = tempDir(t, 'backend-sqlite-');
  const server = await startServer(t, { DATABASE_URL: `file:${path.join(dir, 'missing', 'dir', 'app.db')}` });
  const res = await request(`${server.url}/health`);
  assert.equal(res.status, 503);
  assert.equal(res.json.status, 'error');
  assert.equal(res.json.database, 'error');
  assert.equal((await request(`${server.url}/videos`)).status, 500);
});

test('two processes writing one SQLite file (PM2 cluster workers, or two releases during a reload) both succeed', async (t) => {
  const dir = tempDir(t, 'backend-sqlite-');
  const databaseUrl = `file:${path.join(dir, 'app.db')}`;
  await migrateDeploy(databaseUrl);
  const servers = await Promise.all([startServer(t, { DATABASE_URL: databaseUrl }), startServer(t, { DATABASE_URL: databaseUrl })]);
  const total = 300;
  let next = 0;
  const failures = [];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < total) {
        const i = next++;
        const res = await request(`${servers[i % 2].url}/videos`, { method: 'POST', body: { title: `video ${i}` } });
        if (res.status !== 201) failures.push(`${res.status} ${res.text}`);
      }
    }),
  );
  assert.deepEqual(failures, [], 'every write succeeds (busy_timeout instead of an immediate SQLITE_BUSY)');
  const list = await request(`${servers[0].url}/videos`);
  assert.equal(list.json.length, 100, 'GET /videos lists the newest 100');
  assert.equal(new Set(list.json.map((v) => v.id)).size, 100);
});
