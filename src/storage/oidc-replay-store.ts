/**
 * The `jti`s of accepted OIDC ID tokens (migrations/0008_oidc_replay.sql). `claimOnce` is one
 * statement: an insert that, on an existing row, takes it over only if that row has expired.
 * Postgres decides a race between two processes on the primary key, so exactly one of them
 * gets the row back.
 */
import type { Db } from './db.js';

export class OidcReplayStore {
  constructor(private readonly db: Db) {}

  /** Record (issuer, jti) until `expiresAt`: true if it was not recorded (or had expired by `now`), false if it is a replay. */
  async claimOnce(issuer: string, jti: string, expiresAt: Date, now: Date): Promise<boolean> {
    const row = await this.db
      .insertInto('oidc_replay')
      .values({ issuer, jti, expires_at: expiresAt, first_seen: now })
      .onConflict((oc) => oc.columns(['issuer', 'jti']).doUpdateSet({ expires_at: expiresAt, first_seen: now }).where('oidc_replay.expires_at', '<=', now))
      .returning('jti')
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Forget the tokens expired by `now`; returns how many. */
  async prune(now: Date): Promise<number> {
    const result = await this.db.deleteFrom('oidc_replay').where('expires_at', '<=', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** How many tokens are remembered (tests, metrics). */
  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('oidc_replay')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}
