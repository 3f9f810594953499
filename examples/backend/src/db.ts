import { PrismaLibSQL } from '@prisma/adapter-libsql';
import { PrismaPg } from '@prisma/adapter-pg';
import { databaseKind } from './config';
import { PrismaClient as PostgresClient } from './generated/postgresql/client';
import { PrismaClient as SqliteClient } from './generated/sqlite/client';

export interface Video {
  id: number;
  title: string;
  durationSeconds: number;
  createdAt: Date;
}

export interface NewVideo {
  title: string;
  durationSeconds?: number;
}

/** What the routes need from the database, whichever provider serves it. */
export interface Store {
  readonly kind: 'postgresql' | 'sqlite';
  listVideos(limit: number): Promise<Video[]>;
  getVideo(id: number): Promise<Video | null>;
  createVideo(input: NewVideo): Promise<Video>;
  /** Resolves when the database answers `SELECT 1`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The part of a generated Prisma Client the store uses. Both generated clients (one per provider,
 * see prisma/) have the same model API, so each satisfies it without a cast.
 */
interface VideoClient {
  video: {
    findMany(args: { orderBy: { id: 'desc' }; take: number }): PromiseLike<Video[]>;
    findUnique(args: { where: { id: number } }): PromiseLike<Video | null>;
    create(args: { data: NewVideo }): PromiseLike<Video>;
  };
  $queryRawUnsafe(query: string): PromiseLike<unknown>;
  $disconnect(): Promise<void>;
}

function storeOf(kind: Store['kind'], client: VideoClient): Store {
  return {
    kind,
    listVideos: async (limit) => client.video.findMany({ orderBy: { id: 'desc' }, take: limit }),
    getVideo: async (id) => client.video.findUnique({ where: { id } }),
    createVideo: async (data) => client.video.create({ data }),
    ping: async () => {
      await client.$queryRawUnsafe('SELECT 1');
    },
    close: () => client.$disconnect(),
  };
}

/** How long a SQLite statement waits for another process's write lock before it fails. */
const SQLITE_BUSY_TIMEOUT_MS = 5000;

type LibSQLConfig = Parameters<PrismaLibSQL['createClient']>[0];
type LibSQLClient = ReturnType<PrismaLibSQL['createClient']>;

/**
 * Without a busy timeout SQLite fails a statement at once (SQLITE_BUSY, which Prisma reports as
 * P1008 "Operation has timed out") when another process holds the write lock: PM2 cluster workers,
 * or the old and the new release during a reload. libsql's client has no option for it and opens
 * a new connection after each transaction, so every connection gets the pragma.
 */
class PrismaLibSQLWithBusyTimeout extends PrismaLibSQL {
  override createClient(config: LibSQLConfig): LibSQLClient {
    const client = super.createClient(config);
    const pragma = `PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`;
    client.execute(pragma).catch((error: unknown) => console.error('sqlite: setting busy_timeout failed:', error));
    const transaction = client.transaction.bind(client);
    client.transaction = async (mode?: 'write' | 'read' | 'deferred') => {
      const tx = await transaction(mode);
      await client.execute(pragma); // opens the client's next connection
      return tx;
    };
    return client;
  }
}

/** Opens the database named by a DATABASE_URL: PostgreSQL for postgres(ql)://, SQLite otherwise. */
export function openStore(databaseUrl: string): Store {
  if (databaseKind(databaseUrl) === 'postgresql') {
    // Without a connect timeout a down server would hang /health instead of failing it.
    const adapter = new PrismaPg({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
    return storeOf('postgresql', new PostgresClient({ adapter }));
  }
  return storeOf('sqlite', new SqliteClient({ adapter: new PrismaLibSQLWithBusyTimeout({ url: databaseUrl }) }));
}
