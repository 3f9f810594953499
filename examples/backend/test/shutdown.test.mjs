// Graceful shutdown as PM2 drives it: SIGINT on reload/stop, the 'shutdown' message, wait_ready.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { migrateDeploy, request, sleep, startServer, tempDir } from './helpers.mjs';

async function migratedDatabase(t) {
  const databaseUrl = `file:${path.join(tempDir(t, 'backend-shutdown-'), 'app.db')}`;
  await migrateDeploy(databaseUrl);
  return databaseUrl;
}

/** A raw keep-alive HTTP/1.1 connection, so the test decides when each byte is sent. */
async function connect(port) {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const conn = { socket, received: '', closed: false };
  socket.setEncoding('utf8').on('data', (chunk) => (conn.received += chunk));
  conn.closedPromise = new Promise((resolve) => socket.once('close', () => resolve((conn.closed = true))));
  socket.on('error', () => {});
  return conn;
}

async function until(what, predicate, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Whether a new connection to the port reaches the server with this release id. A refused
 * connection does not; neither does one that another process got, after the server freed the port
 * (other tests on this machine listen on ports of the same ephemeral range).
 */
function answersNewConnection(port, releaseId) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    const finish = () => {
      socket.destroy();
      resolve(received.includes(`"release":"${releaseId}"`));
    };
    socket.setEncoding('utf8').on('data', (chunk) => (received += chunk));
    socket.once('connect', () => {
      socket.write('GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
      setTimeout(finish, 1000);
    });
    socket.once('close', finish);
    socket.once('error', () => {});
  });
}

test('SIGINT with keep-alive clients: in-flight and next requests are answered, idle connections close, exit 0', async (t) => {
  const databaseUrl = await migratedDatabase(t);
  const releaseId = `shutdown-${process.pid}-${Date.now()}`;
  const server = await startServer(t, { DATABASE_URL: databaseUrl, RELEASE_ID: releaseId });

  // Three keep-alive connections, each answered once: one stays idle, one sends its next request
  // during the shutdown, one is a slow client in the middle of a POST when the signal comes.
  const [idle, busy, slow] = await Promise.all([connect(server.port), connect(server.port), connect(server.port)]);
  for (const conn of [idle, busy, slow]) {
    conn.socket.write('GET /health HTTP/1.1\r\nHost: test\r\n\r\n');
    await until('a first /health answer', () => conn.received.includes('"status":"ok"'));
    assert.match(conn.received, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(conn.received, /\r\nConnection: keep-alive\r\n/i);
    conn.received = '';
  }
  const body = JSON.stringify({ title: 'uploaded during shutdown', durationSeconds: 12 });
  slow.socket.write(
    `POST /videos HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`,
  );
  await sleep(200); // the server has the headers and waits for the rest of the body

  server.child.kill('SIGINT');
  await server.waitForOutput(/SIGINT: shutting down, 1 request\(s\) in flight/);
  assert.equal(await answersNewConnection(server.port, releaseId), false, 'new connections are not served');

  // A keep-alive client's next request is still answered, and closes its connection.
  busy.socket.write('GET /health HTTP/1.1\r\nHost: test\r\n\r\n');
  await Promise.race([busy.closedPromise, sleep(3000)]);
  assert.match(busy.received, /^HTTP\/1\.1 200 OK\r\n/, busy.received);
  assert.match(busy.received, /\r\nConnection: close\r\n/i);
  assert.ok(busy.closed, 'the server closed the connection after that answer');

  // The slow client finishes its upload; the answer comes, with `Connection: close`.
  await sleep(300);
  slow.socket.write(body.slice(10));
  await Promise.race([slow.closedPromise, sleep(3000)]);
  assert.match(slow.received, /^HTTP\/1\.1 201 Created\r\n/, slow.received);
  assert.match(slow.received, /\r\nConnection: close\r\n/i);
  assert.match(slow.received, /"title":"uploaded during shutdown","durationSeconds":12/);
  assert.ok(slow.closed, 'the server closed the connection after the answer');

  // The connection that stays idle is closed after the grace (1 s), then the process exits 0.
  await Promise.race([idle.closedPromise, sleep(3000)]);
  assert.ok(idle.closed, 'the idle keep-alive connection is closed');
  assert.equal(idle.received, '', 'nothing was sent on the idle connection');
  assert.deepEqual(await server.waitForExit(), { code: 0, signal: null });
  assert.match(server.output, /shutdown: done/);

  // The video was really written, not just answered.
  const again = await startServer(t, { DATABASE_URL: databaseUrl });
  const list = await request(`${again.url}/videos`);
  assert.deepEqual(list.json.map((v) => v.title), ['uploaded during shutdown']);
});

test("PM2: 'ready' is sent after listening, the 'shutdown' message stops the process with exit 0", async (t) => {
  const server = await startServer(t, { DATABASE_URL: await migratedDatabase(t) }, { ipc: true });
  await until("PM2's 'ready' message", () => server.messages.includes('ready'), 2000);
  assert.equal((await request(`${server.url}/health`)).status, 200);
  server.child.send('shutdown');
  assert.deepEqual(await server.waitForExit(), { code: 0, signal: null });
  assert.match(server.output, /shutdown message: shutting down/);
});

test('a request still running at SHUTDOWN_TIMEOUT_MS forces exit 1', async (t) => {
  const server = await startServer(t, { DATABASE_URL: await migratedDatabase(t), SHUTDOWN_TIMEOUT_MS: '300' });
  const stuck = await connect(server.port);
  stuck.socket.write('POST /videos HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
  await sleep(200);
  const started = Date.now();
  server.child.kill('SIGINT');
  assert.deepEqual(await server.waitForExit(), { code: 1, signal: null });
  const waited = Date.now() - started;
  assert.ok(waited >= 250 && waited < 5000, `exited after ${waited} ms`);
  assert.match(server.output, /1 request\(s\) still running after 300 ms/);
  stuck.socket.destroy();
});
