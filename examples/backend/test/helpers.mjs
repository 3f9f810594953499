// Test helpers: run the Prisma CLI and the built server (dist/server.js) as child processes.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prismaCli = path.join(appDir, 'node_modules', 'prisma', 'build', 'index.js');
const serverJs = path.join(appDir, 'dist', 'server.js');

if (!fs.existsSync(serverJs)) throw new Error(`${serverJs} is missing: run npm run build first (npm test does)`);

/** The environment of this process without anything that would change the app's behaviour. */
export function cleanEnv(extra = {}) {
  const env = { ...process.env };
  for (const key of ['DATABASE_URL', 'PORT', 'HOST', 'RELEASE_ID', 'CRASH_ON_START', 'HEALTH_FAIL', 'SHUTDOWN_TIMEOUT_MS']) {
    delete env[key];
  }
  return { ...env, ...extra };
}

export function tempDir(t, prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Runs the Prisma CLI of node_modules in the app folder, as the VPS does with `npx prisma ...`.
 * Asynchronous on purpose: a test blocked in spawnSync cannot see a server close an idle
 * keep-alive connection, and its next fetch on that connection fails.
 */
export function prisma(args, databaseUrl, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [prismaCli, ...args], {
      cwd: appDir,
      env: cleanEnv({ DATABASE_URL: databaseUrl, PRISMA_HIDE_UPDATE_MESSAGE: '1' }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, output: signal ? `${output}\n(killed by ${signal} after 60 s)` : output });
    });
    child.stdin.end(input ?? '');
  });
}

/** `prisma migrate deploy`; throws with the CLI's output when it fails. */
export async function migrateDeploy(databaseUrl) {
  const result = await prisma(['migrate', 'deploy'], databaseUrl);
  if (result.status !== 0) throw new Error(`prisma migrate deploy failed (${result.status}):\n${result.output}`);
  return result.output;
}

/**
 * Starts dist/server.js on a free port (PORT=0) and resolves once it listens, with its base URL.
 * The process is killed when the test ends if it is still running.
 */
export async function startServer(t, env, { ipc = false } = {}) {
  const child = spawn(process.execPath, [serverJs], {
    cwd: appDir,
    env: cleanEnv({ PORT: '0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])],
  });
  const server = new ServerProcess(child);
  t.after(() => server.kill());
  const match = await server.waitForOutput(/listening on (http:\/\/[^\s]+)/, 15_000);
  server.url = match[1];
  return server;
}

export class ServerProcess {
  constructor(child) {
    this.child = child;
    this.output = '';
    this.url = '';
    /** IPC messages from the server (with { ipc: true }), e.g. PM2's 'ready'. */
    this.messages = [];
    child.on('message', (message) => this.messages.push(message));
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    child.stdout.setEncoding('utf8').on('data', (chunk) => (this.output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (this.output += chunk));
  }

  get port() {
    return Number(new URL(this.url).port);
  }

  /** Resolves with the match once the server's stdout or stderr matches, rejects on exit or timeout. */
  waitForOutput(pattern, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = this.output.match(pattern);
        if (match) {
          done();
          resolve(match);
        }
      };
      const onExit = (code, signal) => {
        done();
        reject(new Error(`server exited (${code ?? signal}) before printing ${pattern}; output:\n${this.output}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`server did not print ${pattern} within ${timeoutMs} ms; output:\n${this.output}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.child.stdout.off('data', check);
        this.child.stderr.off('data', check);
        this.child.off('exit', onExit);
      };
      this.child.stdout.on('data', check);
      this.child.stderr.on('data', check);
      this.child.on('exit', onExit);
      check();
    });
  }

  /** Resolves with the exit code, or rejects if the process is still running after timeoutMs. */
  async waitForExit(timeoutMs = 15_000) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`server still running after ${timeoutMs} ms; output:\n${this.output}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Runs dist/server.js expecting it to exit by itself (a start failure); resolves with code and output. */
export function runServerToExit(env, timeoutMs = 15_000) {
  const result = spawnSync(process.execPath, [serverJs], {
    cwd: appDir,
    env: cleanEnv({ PORT: '0', ...env }),
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { status: result.status, signal: result.signal, output: `${result.stdout}${result.stderr}` };
}

/** fetch + JSON body; never follows redirects. */
export async function request(url, { method = 'GET', body, headers = {} } = {}) {
  const response = await fetch(url, {
    method,
    redirect: 'manual',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it right after). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The video routes on an empty, migrated database: the same checks for SQLite and PostgreSQL.
 * `assert` is node:assert/strict.
 */
export async function checkVideoRoutes(assert, baseUrl) {
  let res = await request(`${baseUrl}/videos`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, []);

  res = await request(`${baseUrl}/videos`, { method: 'POST', body: { title: '  First video ' } });
  assert.equal(res.status, 201, res.text);
  const first = res.json;
  assert.equal(first.title, 'First video');
  assert.equal(first.durationSeconds, 0, 'durationSeconds defaults to 0 (second migration)');
  assert.ok(Number.isInteger(first.id) && first.id > 0);
  assert.ok(Math.abs(Date.parse(first.createdAt) - Date.now()) < 60_000, `createdAt ${first.createdAt} is now`);
  assert.equal(res.headers.get('location'), `/videos/${first.id}`);

  res = await request(`${baseUrl}/videos`, { method: 'POST', body: { title: 'Second', durationSeconds: 95 } });
  assert.equal(res.status, 201, res.text);
  const second = res.json;
  assert.equal(second.durationSeconds, 95);

  res = await request(`${baseUrl}/videos`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, [second, first], 'newest first');

  res = await request(`${baseUrl}/videos/${first.id}`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, first);

  for (const id of [String(second.id + 1000), 'abc', '0', '-1', '1.5', '99999999999']) {
    res = await request(`${baseUrl}/videos/${id}`);
    assert.equal(res.status, 404, `GET /videos/${id}`);
    assert.match(res.json.error, /no video/);
  }

  for (const body of [{}, { title: '' }, { title: 42 }, { title: 'x'.repeat(201) }, { title: 'ok', durationSeconds: -5 }, [1]]) {
    res = await request(`${baseUrl}/videos`, { method: 'POST', body });
    assert.equal(res.status, 400, `POST ${JSON.stringify(body)}`);
    assert.equal(res.json.error, 'invalid video');
  }
  res = await request(`${baseUrl}/videos`, { method: 'POST', body: '{"title": ' });
  assert.equal(res.status, 400, 'malformed JSON');
  assert.ok(res.json.error);

  res = await request(`${baseUrl}/nothing-here`);
  assert.equal(res.status, 404);
  assert.deepEqual(res.json, { error: 'no route GET /nothing-here' });

  res = await request(`${baseUrl}/videos`);
  assert.equal(res.json.length, 2, 'rejected requests created nothing');
}

/** /health answers 200 with the contract's fields. */
export async function checkHealthy(assert, baseUrl, releaseId) {
  const res = await request(`${baseUrl}/health`);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, 'ok');
  assert.equal(res.json.release, releaseId);
  assert.equal(res.json.version, JSON.parse(fs.readFileSync(path.join(appDir, 'package.json'), 'utf8')).version);
  assert.ok(Number.isInteger(res.json.uptime) && res.json.uptime >= 0, `uptime ${res.json.uptime}`);
  assert.match(res.headers.get('content-type'), /application\/json/);
}
