/** Store-wide settings (`store_settings`): one named value each, such as the KEK fingerprint. */
import type { Db } from './db.js';

export type SettingName = 'kek_id';

export class SettingsStore {
  constructor(private readonly db: Db) {}

  /** The value, optionally row-locked until the transaction ends. */
  async read(name: SettingName, lock?: 'share' | 'update'): Promise<string | null> {
    let q = this.db.selectFrom('store_settings').select('value').where('name', '=', name);
    if (lock === 'share') q = q.forShare();
    if (lock === 'update') q = q.forUpdate();
    return (await q.executeTakeFirst())?.value ?? null;
  }

  /** Record `value` unless a value is already there; returns the value in force afterwards. */
  async init(name: SettingName, value: string): Promise<string> {
    await this.db
      .insertInto('store_settings')
      .values({ name, value })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    return (await this.read(name)) ?? value;
  }

  async write(name: SettingName, value: string): Promise<void> {
    await this.db
      .insertInto('store_settings')
      .values({ name, value })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value, updated_at: new Date() }))
      .execute();
  }
}
