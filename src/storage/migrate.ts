/**
 * Applies migrations/*.sql in name order, once each, recorded in `signet_migrations`. A session
 * advisory lock makes concurrent starts of several Signet processes safe.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import type { Database } from './database.js';

const MIGRATION_LOCK = 0x5167_6e65; // arbitrary, constant: "Sgne"

export function migrationsDir(): string {
  // dist/src/storage/migrate.js or src/storage/migrate.ts → <project>/migrations
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = here.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..';
  return path.resolve(here, up, 'migrations');
}

export async function migrate(database: Database, dir = migrationsDir()): Promise<string[]> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  return database.db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK})`.execute(conn);
    try {
      await sql`create table if not exists signet_migrations (
        name text primary key, applied_at timestamptz not null default now())`.execute(conn);
      const done = new Set((await conn.selectFrom('signet_migrations').select('name').execute()).map((r) => r.name));
      const applied: string[] = [];
      for (const file of files) {
        if (done.has(file)) continue;
        const script = readFileSync(path.join(dir, file), 'utf8');
        const name = file.replace(/'/g, "''");
        await sql
          .raw(`BEGIN;\n${script}\n;INSERT INTO signet_migrations (name) VALUES ('${name}');\nCOMMIT;`)
          .execute(conn)
          .catch(async (e: unknown) => {
            await sql
              .raw('ROLLBACK')
              .execute(conn)
              .catch(() => {});
            throw new Error(`migration ${file} failed: ${(e as Error).message}`);
          });
        applied.push(file);
      }
      return applied;
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK})`.execute(conn);
    }
  });
}
