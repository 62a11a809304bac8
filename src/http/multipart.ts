// multipart/form-data parsing for the atomic update endpoint (POST /v2/{gun}/_trust/tuf/).
//
// Hand-written on purpose: Go >= 1.17 Part.FileName(), busboy/multer (preservePath: false) and
// undici's formData() all reduce the filename to its last path segment, which turns the
// delegation role `targets/releases` into `releases`. The role name is the raw `filename`
// parameter, and the part bytes are stored and hashed verbatim, so both must come through
// untouched. Behaviour follows Go's mime/multipart Reader (what notary-server uses) where the
// two differ from RFC 2046: bare-LF line endings, LWSP after delimiters, a preamble made of
// lines that merely start with the delimiter.
//
// Deliberately not done: Content-Transfer-Encoding (Go silently decodes quoted-printable; no
// Notary client sends it and we must keep exact bytes) and RFC 2231 parameter continuations
// (`filename*0=`), which no Notary client emits.
import { SignetError } from '../tuf/core/signet-error.js';

export type MultipartErrorCode = 'MALFORMED_UPLOAD' | 'NO_FILENAME' | 'TOO_MANY_PARTS' | 'PART_TOO_LARGE';

export class MultipartError extends SignetError {
  constructor(
    public readonly code: MultipartErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MultipartError';
  }
}

export interface UploadedPart {
  /** Raw `filename` parameter, verbatim: slashes kept, a trailing ".json" NOT stripped here. */
  filename: string;
  /** The `name` parameter (notary sends "files"; the server ignores it), null if absent. */
  fieldName: string | null;
  /** Exact part body bytes (a view into the request body). */
  data: Buffer;
}

/** Cap on one part's header section, so a missing blank line cannot make us scan the whole body. */
const MAX_HEADER_BYTES = 16 * 1024;

// RFC 2045 token / tspecials, as in Go's mime package.
const TSPECIALS = '()<>@,;:\\"/[]?=';
const TOKEN = "[!#$%&'*+\\-.^_`{|}~0-9A-Za-z]+";
const TOKEN_AT_START = new RegExp(`^${TOKEN}`);
const MEDIA_TYPE = new RegExp(`^${TOKEN}(?:/${TOKEN})?$`);
const PARAM_KEY = new RegExp(`^;\\s*(${TOKEN})\\s*=\\s*`);
const HEADER_NAME = new RegExp(`^${TOKEN}$`);
// RFC 2046 §5.1.1: 1..70 bchars, the last one not a space.
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const DASH = 0x2d;

function malformed(message: string): MultipartError {
  return new MultipartError('MALFORMED_UPLOAD', message);
}

/** Boundary from a Content-Type header value; MALFORMED_UPLOAD unless multipart/form-data with a valid boundary. */
export function multipartBoundary(contentType: string | undefined): string {
  const media = contentType === undefined ? null : parseMediaType(contentType);
  if (media === null || media.type !== 'multipart/form-data') {
    throw malformed('request body is not multipart/form-data');
  }
  const boundary = media.params.get('boundary');
  if (boundary === undefined || !BOUNDARY.test(boundary)) {
    throw malformed('multipart/form-data without a valid boundary');
  }
  return boundary;
}

/** Parse a complete multipart/form-data body (already bounded in size by the caller). */
export function parseMultipart(body: Buffer, boundary: string, limits: { maxParts: number; maxPartBytes: number }): UploadedPart[] {
  // An empty or odd boundary would make every search below degenerate.
  if (!BOUNDARY.test(boundary)) throw malformed('invalid multipart boundary');
  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1');

  // Preamble: skip until a line that is exactly a delimiter (Go skips any other line, even one
  // that merely starts with "--boundary"). The first delimiter line also fixes the newline
  // convention used in front of later delimiters, as Go's reader does.
  let pos = 0;
  let newline: 'crlf' | 'lf';
  for (;;) {
    const at = body.indexOf(dashBoundary, pos);
    if (at < 0) throw malformed('multipart delimiter not found');
    if (at === 0 || body[at - 1] === LF) {
      const after = at + dashBoundary.length;
      if (isDashDash(body, after) && lineEnd(body, after + 2) !== null) return []; // empty update
      const end = lineEnd(body, after);
      if (end !== null && end.newlineBytes > 0) {
        newline = end.newlineBytes === 1 ? 'lf' : 'crlf';
        pos = end.next;
        break;
      }
    }
    pos = at + 1;
  }
  const nlDashBoundary = Buffer.concat([Buffer.from(newline === 'crlf' ? '\r\n' : '\n'), dashBoundary]);

  const parts: UploadedPart[] = [];
  for (;;) {
    if (parts.length >= limits.maxParts) {
      throw new MultipartError('TOO_MANY_PARTS', `more than ${limits.maxParts} parts`);
    }
    const { headers, bodyStart } = readHeaders(body, pos);
    // Like Go, an unparseable Content-Disposition just means "no parameters".
    const disposition = parseMediaType(headers.get('content-disposition') ?? '');
    const filename = disposition?.params.get('filename') ?? '';
    if (filename === '') throw new MultipartError('NO_FILENAME', 'multipart part without a filename');

    const delimiter = findDelimiter(body, bodyStart, dashBoundary, nlDashBoundary);
    const data = body.subarray(bodyStart, delimiter.dataEnd);
    if (data.length > limits.maxPartBytes) {
      throw new MultipartError('PART_TOO_LARGE', `part "${filename}" exceeds ${limits.maxPartBytes} bytes`);
    }
    parts.push({ filename, fieldName: disposition?.params.get('name') ?? null, data });
    if (delimiter.final) return parts; // the epilogue is ignored
    pos = delimiter.next;
  }
}

/** If the bytes at `i` end a delimiter line (optional LWSP, then CRLF, LF or end of body), where the next line starts. */
function lineEnd(body: Buffer, i: number): { next: number; newlineBytes: 0 | 1 | 2 } | null {
  while (body[i] === SP || body[i] === HT) i++;
  if (i === body.length) return { next: i, newlineBytes: 0 };
  if (body[i] === LF) return { next: i + 1, newlineBytes: 1 };
  if (body[i] === CR && body[i + 1] === LF) return { next: i + 2, newlineBytes: 2 };
  return null;
}

function isDashDash(body: Buffer, i: number): boolean {
  return body[i] === DASH && body[i + 1] === DASH;
}

/**
 * Find the delimiter ending the part body that starts at `from`. The newline before
 * "--boundary" belongs to the delimiter, not to the data. An occurrence followed by anything
 * other than LWSP, a newline or "--" is ordinary data (as in Go); one followed by those but
 * not forming a proper delimiter line is an error.
 */
function findDelimiter(body: Buffer, from: number, dashBoundary: Buffer, nlDashBoundary: Buffer): { dataEnd: number; final: boolean; next: number } {
  // Go also accepts "--boundary" right at the start of the body (an empty part, no newline in front).
  let at = from;
  let after = from + dashBoundary.length;
  if (!body.subarray(from, after).equals(dashBoundary)) {
    at = body.indexOf(nlDashBoundary, from);
    after = at + nlDashBoundary.length;
  }
  while (at >= 0) {
    const c = body[after];
    if (isDashDash(body, after)) {
      if (lineEnd(body, after + 2) === null) throw malformed('garbage after the closing delimiter');
      return { dataEnd: at, final: true, next: body.length };
    }
    if (c === undefined || c === SP || c === HT || c === CR || c === LF) {
      const end = lineEnd(body, after);
      if (end === null || end.newlineBytes === 0) throw malformed('malformed multipart delimiter line');
      return { dataEnd: at, final: false, next: end.next };
    }
    at = body.indexOf(nlDashBoundary, at + 1);
    after = at + nlDashBoundary.length;
  }
  throw malformed('multipart body is truncated (closing delimiter missing)');
}

/** Read one part's header block (lines ending in CRLF or LF, up to a blank line). */
function readHeaders(body: Buffer, start: number): { headers: Map<string, string>; bodyStart: number } {
  const window = body.subarray(start, start + MAX_HEADER_BYTES);
  const lines: string[] = [];
  let p = 0;
  for (;;) {
    const nl = window.indexOf(LF, p);
    if (nl < 0) {
      throw malformed(window.length === MAX_HEADER_BYTES ? 'part headers too large' : 'part headers not terminated');
    }
    const line = window.toString('utf8', p, nl > p && window[nl - 1] === CR ? nl - 1 : nl);
    p = nl + 1;
    if (line === '') break;
    if (line[0] === ' ' || line[0] === '\t') {
      // obsolete line folding: continuation of the previous header
      if (lines.length === 0) throw malformed('malformed part header');
      lines[lines.length - 1] += ` ${line.trim()}`;
    } else {
      lines.push(line);
    }
  }
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    if (colon < 0 || !HEADER_NAME.test(name)) throw malformed('malformed part header');
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim()); // first one wins, like Go's Header.Get
  }
  return { headers, bodyStart: start + p };
}

/**
 * Go's mime.ParseMediaType: lower-cased type, lower-cased parameter names, token or
 * quoted-string values, `key*=charset'lang'pct-encoded` (RFC 2231/5987) overriding `key`.
 * null when unparseable.
 */
function parseMediaType(value: string): { type: string; params: Map<string, string> } | null {
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  if (!MEDIA_TYPE.test(type)) return null;

  const plain = new Map<string, string>();
  const extended = new Map<string, string>();
  let rest = semi < 0 ? '' : value.slice(semi);
  for (;;) {
    rest = rest.trimStart();
    if (rest.trimEnd() === '' || rest.trimEnd() === ';') break; // a trailing ";" is tolerated
    const key = PARAM_KEY.exec(rest);
    if (key === null) return null;
    const consumed = consumeValue(rest.slice(key[0].length));
    if (consumed === null) return null;
    const name = key[1]!.toLowerCase();
    const star = name.indexOf('*');
    const map = star < 0 ? plain : extended;
    if (map.has(name) && map.get(name) !== consumed.value) return null; // conflicting duplicates
    map.set(name, consumed.value);
    rest = consumed.rest;
  }
  for (const [name, raw] of extended) {
    if (name.indexOf('*') !== name.length - 1) continue; // continuations (name*0, name*1*) unsupported
    const decoded = decodeExtValue(raw);
    if (decoded !== null) plain.set(name.slice(0, -1), decoded);
  }
  return { type, params: plain };
}

/** A token, or a quoted-string in which (like Go) a backslash escapes only tspecials and is literal otherwise. */
function consumeValue(s: string): { value: string; rest: string } | null {
  if (s[0] !== '"') {
    const token = TOKEN_AT_START.exec(s);
    return token === null ? null : { value: token[0], rest: s.slice(token[0].length) };
  }
  let value = '';
  for (let i = 1; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') return { value, rest: s.slice(i + 1) };
    if (c === '\\' && i + 1 < s.length && TSPECIALS.includes(s[i + 1]!)) {
      value += s[++i];
    } else if (c === '\r' || c === '\n') {
      return null;
    } else {
      value += c;
    }
  }
  return null; // unterminated quoted-string
}

/** RFC 5987 ext-value `charset'lang'pct-encoded`; only utf-8 / us-ascii, as in Go. null if not decodable. */
function decodeExtValue(raw: string): string | null {
  const first = raw.indexOf("'");
  const second = first < 0 ? -1 : raw.indexOf("'", first + 1);
  if (second < 0) return null;
  const charset = raw.slice(0, first).toLowerCase();
  if (charset !== 'utf-8' && charset !== 'us-ascii') return null;
  const src = Buffer.from(raw.slice(second + 1), 'utf8');
  const out = Buffer.alloc(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    if (src[i] !== 0x25 /* % */) {
      out[n++] = src[i]!;
      continue;
    }
    const hex = src.toString('latin1', i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
    out[n++] = parseInt(hex, 16);
    i += 2;
  }
  return out.toString('utf8', 0, n);
}
