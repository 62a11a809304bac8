/** Store-wide settings (`store_settings`): one named value each, such as the KEK fingerprint. */
import type { Kysely, Transaction } from 'kysely';
import type { Schema } from './schema.js';

type Db = Kysely<Schema> | Transaction<Schema>;

export type SettingName = 'kek_id';

export async function readSetting(db: Db, name: SettingName, lock?: 'share' | 'update'): Promise<string | null> {
  let q = db.selectFrom('store_settings').select('value').where('name', '=', name);
  if (lock === 'share') q = q.forShare();
  if (lock === 'update') q = q.forUpdate();
  return (await q.executeTakeFirst())?.value ?? null;
}

/** Record `value` unless a value is already there; returns the value in force afterwards. */
export async function initSetting(db: Db, name: SettingName, value: string): Promise<string> {
  await db
    .insertInto('store_settings')
    .values({ name, value })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  return (await readSetting(db, name)) ?? value;
}

export async function writeSetting(db: Db, name: SettingName, value: string): Promise<void> {
  await db
    .insertInto('store_settings')
    .values({ name, value })
    .onConflict((oc) => oc.column('name').doUpdateSet({ value, updated_at: new Date() }))
    .execute();
}
