/** Running `signet` (import, check, …) as a separate process, as operators do, and reading results. */
import assert from 'node:assert/strict';
import pg from 'pg';
import type { ImportReport } from '../../src/import/importer.js';
import { runSignet, type CliResult } from './cli.js';

export type { CliResult };

/** `signet ARGS` with only the given environment: the parent's NOTARY_SIGNER_* must not leak in. */
export function signet(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runSignet(args, { SIGNET_LOG_LEVEL: 'error', ...env }, { isolated: true });
}

/** The `--json` report of an import run. */
export function report(r: CliResult): ImportReport {
  try {
    return JSON.parse(r.stdout) as ImportReport;
  } catch {
    throw new Error(`no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** Rows of one query on a Postgres database, on a connection of its own. */
export async function pgQuery<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** The output of a command that must succeed. */
export async function expectOk(p: Promise<{ code: number | null; out: string }>): Promise<string> {
  const { code, out } = await p;
  assert.equal(code, 0, out);
  return out;
}
