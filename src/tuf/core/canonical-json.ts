/**
 * Canonical JSON as Notary v1 (docker/go `json.MarshalCanonical`) and the TUF 1.0 libraries
 * (OLPC canonical JSON) produce it: the bytes every signature in a repository is computed over.
 *
 * - no insignificant whitespace;
 * - object keys sorted by the byte order of their UTF-8 encoding (not JS's UTF-16 order);
 * - strings escape only `"` and `\`; every other character, control characters and
 *   non-ASCII included, is written raw;
 * - numbers must be integers (anything else cannot be signed reproducibly).
 *
 * Our own code, because it must match Go's output byte for byte and no package does: RFC 8785
 * (the `canonicalize` package) escapes control characters such as the newlines in PEM keys, and
 * `@tufjs/canonical-json` sorts keys by UTF-16 code units (JS's default order), which differs
 * from Go's UTF-8 byte order when keys hold characters outside the Basic Multilingual Plane
 * beside ones from U+E000 up; either way the bytes would differ from what clients sign.
 */
import { SignetError } from './signet-error.js';

export class CanonicalJsonError extends SignetError {
  readonly code = 'CANONICAL_JSON';
  override name = 'CanonicalJsonError';
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * JS sorts strings by UTF-16 code units, which is UTF-8 byte order unless a key holds a
 * surrogate pair or a character in U+E000..U+FFFF; only then is the slower byte order needed.
 */
const NEEDS_BYTE_ORDER = /[\uD800-\uFFFF]/;

function sortKeys(keys: string[]): string[] {
  return keys.some((k) => NEEDS_BYTE_ORDER.test(k)) ? keys.sort(compareUtf8) : keys.sort();
}

const ESCAPED = /[\\"]/;

function encodeString(s: string): string {
  return ESCAPED.test(s) ? '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"' : '"' + s + '"';
}

/** Deeper values are refused rather than recursed into without bound. */
export const MAX_DEPTH = 512;

function encode(value: unknown, out: string[], depth = 0): void {
  if (depth > MAX_DEPTH) throw new CanonicalJsonError(`value nested deeper than ${MAX_DEPTH} levels`);
  if (value === null) {
    out.push('null');
  } else if (typeof value === 'boolean') {
    out.push(value ? 'true' : 'false');
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new CanonicalJsonError(`cannot canonicalise non-integer or unsafe number ${value}`);
    }
    out.push(String(value));
  } else if (typeof value === 'string') {
    out.push(encodeString(value));
  } else if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, i) => {
      if (i > 0) out.push(',');
      encode(item, out, depth + 1);
    });
    out.push(']');
  } else if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = sortKeys(Object.keys(obj));
    out.push('{');
    keys.forEach((key, i) => {
      if (i > 0) out.push(',');
      out.push(encodeString(key), ':');
      encode(obj[key], out, depth + 1);
    });
    out.push('}');
  } else {
    throw new CanonicalJsonError(`cannot canonicalise a value of type ${typeof value}`);
  }
}

/** The canonical JSON text of `value`. */
export function canonicalJsonString(value: unknown): string {
  const out: string[] = [];
  encode(value, out);
  return out.join('');
}

/** The canonical JSON bytes (UTF-8) of `value`: what signatures are computed over. */
export function canonicalJson(value: unknown): Buffer {
  return Buffer.from(canonicalJsonString(value), 'utf8');
}
