// Prisma CLI configuration (generate, migrate deploy, migrate diff). Prisma 6.19 runs its schema
// engine as WebAssembly through a driver adapter when `engine: 'js'` is set, so no native engine is
// downloaded: the CLI works offline and on a VPS that only has the npm registry.
//
// One Prisma schema has one provider, so there is one schema and one migrations folder per
// provider, chosen here from DATABASE_URL the same way src/db.ts chooses the runtime client.
import { existsSync } from 'node:fs';
import { PrismaLibSQL } from '@prisma/adapter-libsql';
import { PrismaPg } from '@prisma/adapter-pg';
import { defineConfig } from 'prisma/config';

// With a config file Prisma no longer reads .env itself; on the VPS the release's .env links to
// the shared one.
if (!process.env.DATABASE_URL && existsSync('.env')) process.loadEnvFile('.env');

const url = process.env.DATABASE_URL ?? '';
if (url === '') {
  throw new Error(
    'DATABASE_URL is not set: use file:/absolute/path/app.db for SQLite or postgresql://user:password@host:5432/db for PostgreSQL',
  );
}
const provider = /^postgres(ql)?:\/\//.test(url) ? 'postgresql' : 'sqlite';

/** Same reason as in src/db.ts: wait for a live release's write lock instead of failing at once. */
class PrismaLibSQLWithBusyTimeout extends PrismaLibSQL {
  override createClient(config: Parameters<PrismaLibSQL['createClient']>[0]): ReturnType<PrismaLibSQL['createClient']> {
    const client = super.createClient(config);
    const pragma = 'PRAGMA busy_timeout = 5000';
    client.execute(pragma).catch((error: unknown) => console.error('sqlite: setting busy_timeout failed:', error));
    const transaction = client.transaction.bind(client);
    client.transaction = async (mode?: 'write' | 'read' | 'deferred') => {
      const tx = await transaction(mode);
      await client.execute(pragma);
      return tx;
    };
    return client;
  }
}

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: `prisma/${provider}/schema.prisma`,
  migrations: { path: `prisma/${provider}/migrations` },
  adapter: async () =>
    provider === 'postgresql'
      ? new PrismaPg({ connectionString: url, connectionTimeoutMillis: 10_000, allowExitOnIdle: true })
      : new PrismaLibSQLWithBusyTimeout({ url }),
});
