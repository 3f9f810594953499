import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createApp } from './app';
import { ConfigError, loadConfig } from './config';
import { openStore } from './db';

/** How long a shutdown leaves idle keep-alive connections open for their client's next request. */
const IDLE_GRACE_MS = 1000;

function packageVersion(): string {
  const pkg: unknown = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  const version = typeof pkg === 'object' && pkg !== null ? (pkg as { version?: unknown }).version : undefined;
  return typeof version === 'string' ? version : '0.0.0';
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  if (config.crashOnStart) throw new Error('CRASH_ON_START=1 is set: crashing before listening, as asked');

  const store = openStore(config.databaseUrl);
  let shuttingDown = false;
  const app = createApp({
    store,
    version: packageVersion(),
    releaseId: config.releaseId,
    healthFail: config.healthFail,
    isShuttingDown: () => shuttingDown,
  });
  const server = http.createServer(app);

  // Responses not sent yet when the shutdown begins get `Connection: close` too.
  const inFlight = new Set<http.ServerResponse>();
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    inFlight.add(res);
    res.on('close', () => inFlight.delete(res));
  });

  const exit = (code: number, message: string): void => {
    // Under PM2 stdout is a pipe to its daemon: exit once the last line is written, not before.
    (code === 0 ? process.stdout : process.stderr).write(`${message}\n`, () => process.exit(code));
  };

  const shutdown = (reason: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    console.log(`${reason}: shutting down, ${inFlight.size} request(s) in flight`);
    const force = setTimeout(() => {
      exit(1, `shutdown: ${inFlight.size} request(s) still running after ${config.shutdownTimeoutMs} ms, exiting`);
    }, config.shutdownTimeoutMs);
    force.unref();
    for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');

    // Stop accepting. http.Server#close would also close the idle keep-alive connections at once
    // (Node >= 19), and a client sending its next request on one at that moment gets ECONNRESET;
    // net.Server#close only stops accepting, and calls back once every connection is gone.
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
    // During the grace, busy keep-alive clients send their next request and get it answered with
    // `Connection: close`; what is still idle after it is closed. Staying alive that long also lets
    // this worker hand back the connections PM2's cluster master sent it before it saw the close:
    // a worker that exits first leaves them stranded in the master (nodejs/node#21746).
    const grace = new Promise<void>((resolve) =>
      setTimeout(() => {
        server.closeIdleConnections();
        resolve();
      }, IDLE_GRACE_MS),
    );
    Promise.all([closed, grace])
      .then(() => store.close())
      .then(
        () => exit(0, 'shutdown: done'),
        (error: unknown) => exit(1, `shutdown: closing the database failed: ${String(error)}`),
      );
  };
  // PM2 sends SIGINT on stop and reload (kill_timeout later, SIGKILL), systemd and docker SIGTERM,
  // and PM2 sends the 'shutdown' message instead of a signal where signals are unavailable
  // (or with shutdown_with_message).
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('message', (message: unknown) => {
    if (message === 'shutdown') shutdown('shutdown message');
  });

  await listen(server, config.port, config.host);
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  console.log(
    `listening on http://${config.host}:${port} (${store.kind}, release ${config.releaseId ?? 'none'}, pid ${process.pid})`,
  );
  // PM2 wait_ready: the new worker counts as started only now, so a reload drops no request.
  process.send?.('ready');
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `cannot start: ${error.message}` : error);
  process.exit(1);
});
