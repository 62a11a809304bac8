/**
 * Helpers for the attack and fuzz suites: a byte-exact HTTP client (paths are sent as given,
 * never normalised; bodies may stream; a refusal that closes the connection mid-upload still
 * yields its response), a check of notary's error envelope, and a snapshot of everything the
 * store holds so that a refused request can be shown to have changed nothing.
 */
import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { Kysely } from 'kysely';
import type { Schema } from '../../src/storage/schema.js';

// ---- the store ----

export interface StoreSnapshot {
  /** Every metadata row, as (gun, role, version, sha256), in a stable order. */
  tuf_files: { gun: string; role: string; version: number; sha256: string }[];
  changefeed: number;
  server_keys: number;
}

/** All rows of tuf_files and the number of changefeed records and server keys. */
export async function storeSnapshot(db: Kysely<Schema>): Promise<StoreSnapshot> {
  const files = await db
    .selectFrom('tuf_files')
    .select(['gun', 'role', 'version', 'sha256'])
    .orderBy('gun')
    .orderBy('role')
    .orderBy('version')
    .orderBy('sha256')
    .execute();
  const count = async (table: 'changefeed' | 'server_keys') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return {
    tuf_files: files.map((f) => ({ gun: f.gun, role: f.role, version: Number(f.version), sha256: f.sha256 })),
    changefeed: await count('changefeed'),
    server_keys: await count('server_keys'),
  };
}

/** Server keys by (key_id, gun, role, public key): rows may be added, never changed or removed. */
export async function serverKeyRows(db: Kysely<Schema>): Promise<string[]> {
  const rows = await db.selectFrom('server_keys').select(['key_id', 'gun', 'role', 'public_key']).orderBy('key_id').execute();
  return rows.map((r) => `${r.key_id} ${r.role} ${r.public_key} ${JSON.stringify(r.gun)}`);
}

// ---- HTTP ----

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** Request body bytes written before the response arrived (streamed bodies). */
  sent: number;
}

export interface RawRequest {
  method: string;
  path: string;
  headers?: Record<string, string | number>;
  /** The whole body at once (Content-Length is set unless headers say chunked). */
  body?: Buffer;
  /**
   * A streamed body: called for chunk after chunk until it returns null or the response has
   * arrived; sent with chunked transfer encoding unless a Content-Length header is given.
   */
  stream?: (index: number) => Buffer | null;
  agent?: http.Agent | false;
  timeoutMs?: number;
}

/**
 * Send one request exactly as described. Resolves with the response even when the server
 * answered and closed the connection before the body was fully written.
 */
export function rawRequest(baseUrl: string, r: RawRequest): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    let settled = false;
    let responded = false;
    let sent = 0;
    const headers: Record<string, string | number> = { ...(r.headers ?? {}) };
    const hasHeader = (name: string) => Object.keys(headers).some((h) => h.toLowerCase() === name);
    if (r.body && !hasHeader('content-length') && !hasHeader('transfer-encoding')) headers['Content-Length'] = r.body.length;
    const req = http.request({ host: hostname, port, method: r.method, path: r.path, headers, agent: r.agent ?? false }, (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, headers: res.headers, body, text: body.toString('utf8'), sent });
      });
      res.on('error', (e) => {
        if (!settled) {
          settled = true;
          reject(e);
        }
      });
    });
    req.setTimeout(r.timeoutMs ?? 60_000, () => req.destroy(new Error(`${r.method} ${r.path.slice(0, 200)}: no answer in time`)));
    req.on('error', (e) => {
      // A refusal may close the connection while the body is still being written (EPIPE,
      // ECONNRESET); the response, if it arrived, is what counts.
      if (responded || settled) return;
      settled = true;
      reject(e);
    });
    if (r.stream) {
      const produce = r.stream;
      let index = 0;
      const pump = () => {
        while (!responded && !req.destroyed) {
          const chunk = produce(index++);
          if (chunk === null) {
            req.end();
            return;
          }
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
      };
      pump();
    } else if (r.body) {
      sent = r.body.length;
      req.end(r.body);
    } else {
      req.end();
    }
  });
}

// ---- notary's error envelope ----

export interface ErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** Verbatim messages of the codes the suites expect (notary-protocol.md §1.10). */
export const MESSAGES: Record<string, string> = {
  NO_FILENAME: 'No file/role name provided.',
  INVALID_ROLE: 'The role you are attempting to operate on is invalid.',
  MALFORMED_JSON: 'JSON sent by the client could not be parsed by the server',
  VERSION: 'A newer version of metadata is already available.',
  METADATA_NOT_FOUND: 'You have requested metadata that does not exist.',
  INVALID_UPDATE: 'Update sent by the client is invalid.',
  MALFORMED_UPLOAD: 'The body of your request is malformed.',
  INVALID_GUN: 'The server does not support actions on images of this name.',
  INVALID_PARAMETERS: 'The parameters provided are not valid.',
  UNAUTHORIZED: 'authentication required',
};

/**
 * Why `res` is not a well-formed notary error envelope (one error with string code and
 * message), or null when it is. Size is checked separately.
 */
export function envelopeProblem(res: { status: number; headers: IncomingHttpHeaders; text: string }): string | null {
  const type = res.headers['content-type'] ?? '';
  if (!/^application\/json\b/.test(type)) return `content-type ${JSON.stringify(type)}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.text);
  } catch {
    return `body is not JSON: ${JSON.stringify(res.text.slice(0, 200))}`;
  }
  const errors = (parsed as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return `no errors array: ${res.text.slice(0, 200)}`;
  if (errors.length !== 1) return `${errors.length} errors: ${res.text.slice(0, 200)}`;
  const e = errors[0] as ErrorEntry;
  if (typeof e?.code !== 'string' || typeof e.message !== 'string') return `error without code/message: ${res.text.slice(0, 200)}`;
  return null;
}

/** Assert a refusal: exact status and code, verbatim message, one error, at most 1 KiB; returns it. */
export function assertRefused(res: RawResponse | { status: number; headers: IncomingHttpHeaders; text: string }, status: number, code: string): ErrorEntry {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text.slice(0, 500)}`);
  const problem = envelopeProblem(res);
  assert.equal(problem, null, `not a notary error envelope: ${problem}`);
  assert.ok(Buffer.byteLength(res.text) <= 1024, `error body of ${Buffer.byteLength(res.text)} bytes: clients read 1 KiB`);
  const error = (JSON.parse(res.text) as { errors: ErrorEntry[] }).errors[0]!;
  assert.equal(error.code, code, res.text.slice(0, 500));
  if (MESSAGES[code]) assert.equal(error.message, MESSAGES[code]);
  return error;
}

/** Assert 400 INVALID_UPDATE with a `{"Name": name, "Error": {"Msg": …}}` detail whose Msg matches. */
export function assertInvalidUpdate(res: RawResponse, name: string, msg?: RegExp): void {
  const error = assertRefused(res, 400, 'INVALID_UPDATE');
  const detail = error.detail as { Name?: unknown; Error?: { Msg?: unknown } } | undefined;
  assert.equal(detail?.Name, name, `detail: ${JSON.stringify(error.detail)}`);
  assert.equal(typeof detail?.Error?.Msg, 'string', `detail: ${JSON.stringify(error.detail)}`);
  if (msg) assert.match(detail!.Error!.Msg as string, msg);
}
