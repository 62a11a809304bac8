/**
 * Change notifications between Signet processes sharing one database: every transaction that
 * changes a repository calls `notifyChange` (Postgres delivers it on commit), and every process
 * listens, so in-process caches of current metadata can drop what another process replaced.
 */
import { sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { Schema } from './schema.js';

export const CHANGE_CHANNEL = 'signet_repository_changes';

export async function notifyChange(trx: Transaction<Schema>, gun: string): Promise<void> {
  await sql`select pg_notify(${CHANGE_CHANNEL}, ${gun})`.execute(trx);
}

export interface ChangeListener {
  close(): Promise<void>;
}

/**
 * Listen on a dedicated connection. `onChange(gun)` for each change; `onState(false)` when the
 * connection is lost (changes may be missed until `onState(true)` after reconnecting).
 */
export function listenForChanges(url: string, onChange: (gun: string) => void, onState: (listening: boolean) => void): ChangeListener {
  let client: pg.Client | null = null;
  let closed = false;
  let retry: NodeJS.Timeout | null = null;
  let delay = 100;

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url });
    client = c;
    const lost = () => {
      if (client !== c) return;
      client = null;
      onState(false);
      c.end().catch(() => {});
      if (!closed) retry = setTimeout(() => void connect(), delay);
      delay = Math.min(delay * 2, 5000);
    };
    c.on('error', lost);
    c.on('end', lost);
    c.on('notification', (n) => {
      if (n.channel === CHANGE_CHANNEL && n.payload !== undefined) onChange(n.payload);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANGE_CHANNEL}`);
      delay = 100;
      onState(true);
    } catch {
      lost();
    }
  };
  void connect();
  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
