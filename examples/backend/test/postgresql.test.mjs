// The built server on PostgreSQL: a throwaway cluster (initdb + pg_ctl) on a free loopback port in a
// temp dir, an app role that is not a superuser, migrate deploy, the routes, and a database outage.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  checkHealthy,
  checkVideoRoutes,
  freePort,
  migrateDeploy,
  prisma,
  request,
  sleep,
  startServer,
} from './helpers.mjs';

/** Folders searched for initdb and pg_ctl, in order: $PG_BIN, Debian/Ubuntu, PGDG RPMs, source builds, Homebrew, PATH. */
function candidateBinDirs() {
  const newestFirst = (names) => names.sort((a, b) => Number(b.replace(/\D/g, '')) - Number(a.replace(/\D/g, '')));
  const list = (dir, pattern) => {
    try {
      return newestFirst(fs.readdirSync(dir).filter((name) => pattern.test(name)));
    } catch {
      return [];
    }
  };
  return [
    ...(process.env.PG_BIN ? [process.env.PG_BIN] : []),
    ...list('/usr/lib/postgresql', /^\d+$/).map((v) => `/usr/lib/postgresql/${v}/bin`),
    ...list('/usr', /^pgsql-\d+$/).map((d) => `/usr/${d}/bin`),
    '/usr/local/pgsql/bin',
    '/usr/local/bin',
    '/opt/homebrew/bin',
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean),
  ];
}

const searched = [...new Set(candidateBinDirs())];
const pgBin = searched.find((dir) => ['initdb', 'pg_ctl'].every((bin) => fs.existsSync(path.join(dir, bin))));
const skip = pgBin
  ? false
  : 'no PostgreSQL server binaries (initdb and pg_ctl) found; searched $PG_BIN, /usr/lib/postgresql/*/bin, ' +
    `/usr/pgsql-*/bin, /usr/local/pgsql/bin, /usr/local/bin, /opt/homebrew/bin and PATH: ${searched.join(', ')}. ` +
    'Install them (Debian/Ubuntu: apt-get install postgresql) or set PG_BIN to their folder.';

/** PostgreSQL refuses to run as root: as root, the cluster runs as `nobody`. */
function clusterUser() {
  if (process.getuid?.() !== 0) return {};
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('nobody:'));
  if (!line) throw new Error('running as root and there is no "nobody" user to run PostgreSQL as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

class Cluster {
  constructor(t) {
    this.user = clusterUser();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backend-pg-'));
    if (this.user.uid !== undefined) fs.chownSync(this.dir, this.user.uid, this.user.gid);
    this.data = path.join(this.dir, 'data');
    this.password = crypto.randomBytes(12).toString('hex');
    t.after(() => {
      this.pgCtl(['-m', 'immediate', 'stop'], { allowFailure: true });
      fs.rmSync(this.dir, { recursive: true, force: true });
    });
  }

  run(bin, args, { allowFailure = false } = {}) {
    const result = spawnSync(path.join(pgBin, bin), args, {
      cwd: this.dir,
      ...this.user,
      env: { ...process.env, LC_ALL: 'C' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    if (result.status !== 0 && !allowFailure) {
      const log = fs.existsSync(path.join(this.dir, 'server.log')) ? fs.readFileSync(path.join(this.dir, 'server.log'), 'utf8') : '';
      throw new Error(`${bin} ${args.join(' ')} failed (${result.status ?? result.error}):\n${result.stdout}${result.stderr}${log}`);
    }
    return result;
  }

  pgCtl(args, options) {
    return this.run('pg_ctl', ['-D', this.data, ...args], options);
  }

  init() {
    const pwfile = path.join(this.dir, 'pwfile');
    fs.writeFileSync(pwfile, `${this.password}\n`, { mode: 0o600 });
    if (this.user.uid !== undefined) fs.chownSync(pwfile, this.user.uid, this.user.gid);
    // TCP connections authenticate with a password (scram), as on a real server.
    this.run('initdb', ['-D', this.data, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync']);
    fs.rmSync(pwfile);
  }

  async start() {
    this.port ??= await freePort();
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
    this.pgCtl(['-o', options, '-l', path.join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
  }

  stop() {
    this.pgCtl(['-m', 'fast', '-w', 'stop']);
  }

  url(user, password, database) {
    return `postgresql://${user}:${password}@127.0.0.1:${this.port}/${database}`;
  }
}

async function execute(databaseUrl, sql) {
  const result = await prisma(['db', 'execute', '--stdin', '--schema', 'prisma/postgresql/schema.prisma'], databaseUrl, sql);
  assert.equal(result.status, 0, `${sql}\n${result.output}`);
}

test('migrate deploy on PostgreSQL, then /health and the video routes; /health follows an outage', { skip }, async (t) => {
  t.diagnostic(`PostgreSQL server binaries: ${pgBin}`);
  const cluster = new Cluster(t);
  cluster.init();
  await cluster.start();

  const superUrl = cluster.url('postgres', cluster.password, 'postgres');
  await execute(superUrl, `CREATE ROLE app LOGIN PASSWORD 'app-secret';`);
  await execute(superUrl, 'CREATE DATABASE app OWNER app;');
  const databaseUrl = cluster.url('app', 'app-secret', 'app');

  const first = await migrateDeploy(databaseUrl);
  assert.match(first, /20250601120000_create_video/);
  assert.match(first, /20250608120000_add_video_duration/);
  assert.match(first, /All migrations have been successfully applied/);
  assert.match(await migrateDeploy(databaseUrl), /No pending migrations to apply/, 'a second deploy is a no-op');

  const server = await startServer(t, { DATABASE_URL: databaseUrl, RELEASE_ID: 'pg-release' });
  assert.match(server.output, /\(postgresql, release pg-release/);
  await checkHealthy(assert, server.url, 'pg-release');
  await checkVideoRoutes(assert, server.url);

  // Expand-only: the previous release's insert (no durationSeconds) still works.
  await execute(databaseUrl, `INSERT INTO "Video" ("title") VALUES ('from the previous release');`);
  const list = await request(`${server.url}/videos`);
  assert.equal(list.json[0].title, 'from the previous release');
  assert.equal(list.json[0].durationSeconds, 0);

  cluster.stop();
  let res = await request(`${server.url}/health`);
  assert.equal(res.status, 503, res.text);
  assert.equal(res.json.status, 'error');
  assert.equal(server.child.exitCode, null, 'the server survives the database going away');

  await cluster.start();
  const deadline = Date.now() + 10_000;
  do {
    res = await request(`${server.url}/health`);
    if (res.status === 200) break;
    await sleep(200);
  } while (Date.now() < deadline);
  assert.equal(res.status, 200, `healthy again once PostgreSQL is back: ${res.text}`);
  assert.equal((await request(`${server.url}/videos`)).json.length, 3);

  server.child.kill('SIGINT');
  assert.deepEqual(await server.waitForExit(), { code: 0, signal: null });
});
