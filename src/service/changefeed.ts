/** Read the changefeed with notary's parameter rules. */
import type { ChangeRecord } from '../storage/changefeed-store.js';
import type { ServiceContext } from './context.js';
import { InvalidParametersError } from './errors.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
const INT32 = /^[+-]?\d{1,10}$/;

function int32(text: string): number | null {
  if (!INT32.test(text)) return null;
  const n = Number(text);
  return n >= -(2 ** 31) && n <= 2 ** 31 - 1 ? n : null;
}

export interface ChangefeedPage {
  count: number;
  records: ChangeRecord[] | null;
}

/**
 * `records` is required (0 means the default page); negative pages go backwards. `change_id`
 * empty or 0 starts at the beginning, -1 at the newest record; otherwise it is exclusive.
 * Pages are capped at MAX_PAGE_SIZE records.
 */
export async function readChangefeed(
  ctx: ServiceContext,
  gun: string | null,
  changeIdParam: string | undefined,
  recordsParam: string | undefined,
): Promise<ChangefeedPage> {
  // Every bad parameter is named, each with what it should be: a page size that is missing is
  // not the same mistake as a change ID that is not a number.
  const problems: string[] = [];
  const records = recordsParam === undefined || recordsParam === '' ? null : int32(recordsParam);
  if (recordsParam === undefined || recordsParam === '')
    problems.push('records is required: the page size, an integer (0 = the default of 100; negative = backwards)');
  else if (records === null) problems.push(`invalid records parameter: ${JSON.stringify(recordsParam)} (expected an integer)`);
  const changeId = changeIdParam === undefined || changeIdParam === '' ? 0 : int32(changeIdParam);
  if (changeId === null)
    problems.push(`invalid change_id parameter: ${JSON.stringify(changeIdParam)} (expected an integer: a record ID, 0 for the oldest, -1 for the newest)`);
  if (problems.length > 0 || records === null || changeId === null) throw new InvalidParametersError(problems.join('; '));
  const size = records === 0 ? DEFAULT_PAGE_SIZE : Math.sign(records) * Math.min(Math.abs(records), MAX_PAGE_SIZE);
  const page = await ctx.stores.changefeed.page(gun, changeId, size);
  return { count: page.length, records: page.length > 0 ? page : null };
}
