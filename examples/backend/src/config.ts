/** Runtime configuration, read once from the environment at start. */
export interface Config {
  /** `file:` URL (SQLite, the default) or `postgres://` / `postgresql://` URL. Required. */
  databaseUrl: string;
  /** `PORT`, default 3000. */
  port: number;
  /** `HOST`, default 127.0.0.1: behind a reverse proxy on the VPS, never on a public address by accident. */
  host: string;
  /** `RELEASE_ID`, set by the deploy tool; reported by /health. */
  releaseId: string | null;
  /** `SHUTDOWN_TIMEOUT_MS`, default 8000: after a shutdown signal, exit 1 if requests still run by then. */
  shutdownTimeoutMs: number;
  /** `CRASH_ON_START=1`: throw before listening (deploy-tool tests of a release that never starts). */
  crashOnStart: boolean;
  /** `HEALTH_FAIL=1`: /health answers 503 (deploy-tool tests of a release that never gets healthy). */
  healthFail: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const isPostgresUrl = (url: string): boolean => /^postgres(ql)?:\/\//.test(url);

export function databaseKind(url: string): 'postgresql' | 'sqlite' {
  return isPostgresUrl(url) ? 'postgresql' : 'sqlite';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number, errors: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    errors.push(`${name}: expected an integer ${min}-${max}, got ${JSON.stringify(raw)}`);
    return fallback;
  }
  return value;
}

/** Parses the environment; throws one ConfigError that lists every problem. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const errors: string[] = [];
  const databaseUrl = env.DATABASE_URL ?? '';
  if (databaseUrl === '') {
    errors.push(
      'DATABASE_URL is not set: use file:/absolute/path/app.db for SQLite ' +
        'or postgresql://user:password@host:5432/db for PostgreSQL',
    );
  } else if (!databaseUrl.startsWith('file:') && !isPostgresUrl(databaseUrl)) {
    errors.push(
      `DATABASE_URL: expected a file: URL (SQLite) or a postgres:// / postgresql:// URL, got one starting with ${JSON.stringify(databaseUrl.split(':')[0] + ':')}`,
    );
  }
  const config: Config = {
    databaseUrl,
    port: integer(env, 'PORT', 3000, 0, 65535, errors),
    host: env.HOST || '127.0.0.1',
    releaseId: env.RELEASE_ID || null,
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 8000, 0, 600_000, errors),
    crashOnStart: env.CRASH_ON_START === '1',
    healthFail: env.HEALTH_FAIL === '1',
  };
  if (errors.length > 0) throw new ConfigError(`invalid configuration:\n  ${errors.join('\n  ')}`);
  return config;
}
