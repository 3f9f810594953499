import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import type { NewVideo, Store, Video } from './db';

export interface AppOptions {
  store: Store;
  /** package.json version, reported by /health. */
  version: string;
  releaseId: string | null;
  /** HEALTH_FAIL=1: /health answers 503 whatever the database says. */
  healthFail: boolean;
  /** Milliseconds /health waits for `SELECT 1` before it reports the database as down. */
  healthDbTimeoutMs?: number;
  /** True once a shutdown has begun: every response then carries `Connection: close`. */
  isShuttingDown: () => boolean;
}

const MAX_TITLE = 200;
const LIST_LIMIT = 100;

function videoJson(video: Video) {
  return {
    id: video.id,
    title: video.title,
    durationSeconds: video.durationSeconds,
    createdAt: video.createdAt.toISOString(),
  };
}

/** Validates a POST /videos body; returns the new video or the list of problems. */
export function parseNewVideo(body: unknown): NewVideo | string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return ['expected a JSON object body, e.g. {"title": "My video"}'];
  }
  const { title, durationSeconds } = body as Record<string, unknown>;
  const errors: string[] = [];
  if (typeof title !== 'string' || title.trim() === '') {
    errors.push('title: expected a non-empty string');
  } else if (title.length > MAX_TITLE) {
    errors.push(`title: at most ${MAX_TITLE} characters, got ${title.length}`);
  }
  if (
    durationSeconds !== undefined &&
    !(typeof durationSeconds === 'number' && Number.isSafeInteger(durationSeconds) && durationSeconds >= 0)
  ) {
    errors.push('durationSeconds: expected a non-negative integer');
  }
  if (errors.length > 0) return errors;
  return {
    title: (title as string).trim(),
    ...(durationSeconds === undefined ? {} : { durationSeconds: durationSeconds as number }),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function createApp(options: AppOptions): express.Express {
  const { store, version, releaseId } = options;
  const healthDbTimeoutMs = options.healthDbTimeoutMs ?? 2000;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');

  app.use((_req, res, next) => {
    // Once shutting down, no connection is kept alive for another request: the client reconnects
    // and PM2's cluster master hands the new connection to a live worker.
    if (options.isShuttingDown()) res.setHeader('Connection', 'close');
    next();
  });

  app.get('/health', async (_req: Request, res: Response) => {
    const body = { uptime: Math.floor(process.uptime()), version, release: releaseId };
    if (options.healthFail) {
      res.status(503).json({ status: 'error', ...body, error: 'HEALTH_FAIL=1 is set' });
      return;
    }
    try {
      await withTimeout(store.ping(), healthDbTimeoutMs, 'database check');
      res.json({ status: 'ok', ...body, database: 'ok' });
    } catch (error) {
      console.error('health: database check failed:', error instanceof Error ? error.message : error);
      res.status(503).json({ status: 'error', ...body, database: 'error', error: 'database unreachable' });
    }
  });

  app.get('/videos', async (_req: Request, res: Response) => {
    const videos = await store.listVideos(LIST_LIMIT);
    res.json(videos.map(videoJson));
  });

  app.post('/videos', express.json({ limit: '16kb' }), async (req: Request, res: Response) => {
    const input = parseNewVideo(req.body);
    if (Array.isArray(input)) {
      res.status(400).json({ error: 'invalid video', details: input });
      return;
    }
    const video = await store.createVideo(input);
    res.status(201).location(`/videos/${video.id}`).json(videoJson(video));
  });

  app.get('/videos/:id', async (req: Request<{ id: string }>, res: Response) => {
    const id = Number(req.params.id);
    if (!/^[1-9][0-9]{0,9}$/.test(req.params.id) || id > 2147483647) {
      res.status(404).json({ error: `no video ${JSON.stringify(req.params.id)}` });
      return;
    }
    const video = await store.getVideo(id);
    if (video === null) {
      res.status(404).json({ error: `no video ${id}` });
      return;
    }
    res.json(videoJson(video));
  });

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path}` });
  });

  const onError: ErrorRequestHandler = (error, req, res, next) => {
    const status = typeof error?.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500;
    if (status === 500) console.error(`${req.method} ${req.originalUrl} failed:`, error);
    if (res.headersSent) {
      next(error);
      return;
    }
    // 4xx from body-parser (malformed JSON, too large) keep their message; a 500 never leaks internals.
    res.status(status).json({ error: status === 500 ? 'internal error' : String(error.message) });
  };
  app.use(onError);
  return app;
}
