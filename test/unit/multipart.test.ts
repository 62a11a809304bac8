import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MultipartError, multipartBoundary, parseMultipart, type UploadedPart } from '../../src/http/multipart.js';
import { sharedDir } from '../support/paths.js';

const session = path.join(sharedDir, 'fixtures', 'notary-0.7-session');
const LIMITS = { maxParts: 64, maxPartBytes: 1024 * 1024 };
const B = 'xYz0123456789';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function fixture(n: string): { boundary: string; body: Buffer } {
  const headers = JSON.parse(readFileSync(path.join(session, 'requests', `${n}-post-headers.json`), 'utf8')) as Record<string, string>;
  return {
    boundary: multipartBoundary(headers['content-type']),
    body: readFileSync(path.join(session, 'requests', `${n}-post-body.multipart`)),
  };
}

/** What Go's multipart.Writer (the notary client) emits for these parts. */
function goWriterBody(boundary: string, parts: UploadedPart[]): Buffer {
  const chunks: Buffer[] = [];
  parts.forEach((p, i) => {
    chunks.push(
      Buffer.from(
        `${i === 0 ? '' : '\r\n'}--${boundary}\r\n` +
          `Content-Disposition: form-data; name="${p.fieldName}"; filename="${p.filename}"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
      p.data,
    );
  });
  chunks.push(Buffer.from(`${parts.length === 0 ? '' : '\r\n'}--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

function expectError(code: MultipartError['code'], fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof MultipartError && e.code === code);
}

function parse(text: string | Buffer, limits = LIMITS): UploadedPart[] {
  return parseMultipart(Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'), B, limits);
}

const part = (filename: string, data: string): string => `--${B}\r\nContent-Disposition: form-data; name="files"; filename="${filename}"\r\n\r\n${data}\r\n`;

// ---- recorded notary 0.7 uploads -------------------------------------------------------------

const recorded: Record<string, string[]> = {
  '005': ['snapshot', 'root', 'targets'],
  '011': ['targets', 'snapshot'],
  '018': ['root'],
  '026': ['targets'], // adds the delegation to targets; the delegation file itself comes in 032
  '032': ['targets/releases'],
};
const typeOfRole = (role: string): string => ({ root: 'Root', snapshot: 'Snapshot', timestamp: 'Timestamp' })[role] ?? 'Targets';

for (const [n, roles] of Object.entries(recorded)) {
  test(`recorded upload ${n}: roles ${roles.join(', ')} with exact bytes`, () => {
    const { boundary, body } = fixture(n);
    const parts = parseMultipart(body, boundary, LIMITS);
    assert.deepEqual(
      parts.map((p) => p.filename),
      roles,
    );
    for (const p of parts) {
      assert.equal(p.fieldName, 'files');
      const doc = JSON.parse(p.data.toString('utf8')) as { signed?: { _type?: string }; signatures?: unknown };
      assert.ok(doc.signed && Array.isArray(doc.signatures), `${p.filename} is signed metadata`);
      assert.equal(doc.signed._type, typeOfRole(p.filename));
    }
    // Rebuilding the body the way the Go client wrote it must give the original, byte for byte.
    assert.ok(goWriterBody(boundary, parts).equals(body));
  });
}

test('recorded uploads are bytes-identical to the metadata the server later served', () => {
  const parts = new Map<string, Buffer>();
  for (const n of Object.keys(recorded)) {
    const { boundary, body } = fixture(n);
    for (const p of parseMultipart(body, boundary, LIMITS)) parts.set(`${n}:${p.filename}`, p.data);
  }
  const metadata = (f: string): Buffer => readFileSync(path.join(session, 'metadata', f));
  // These are the stored files whose sha256 matches an uploaded part.
  assert.ok(parts.get('005:root')!.equals(metadata('1.root.json')));
  assert.ok(parts.get('018:root')!.equals(metadata('root.json')));
  assert.ok(parts.get('026:targets')!.equals(metadata('targets.json')));
  assert.ok(parts.get('032:targets/releases')!.equals(metadata('targets_releases.json')));
  // And the client later fetched the other uploads by the sha256 of exactly these bytes.
  const sequence = readFileSync(path.join(session, 'http-sequence.txt'), 'utf8');
  for (const [key, expected] of [
    ['005:snapshot', 'snapshot'],
    ['005:targets', 'targets'],
    ['011:snapshot', 'snapshot'],
    ['011:targets', 'targets'],
    ['026:targets', 'targets'],
    ['032:targets/releases', 'targets/releases'],
  ] as const) {
    assert.ok(sequence.includes(`/_trust/tuf/${expected}.${sha256(parts.get(key)!)}.json -> 200`), key);
  }
});

// ---- Content-Type / boundary -----------------------------------------------------------------

test('multipartBoundary: unquoted, quoted, case-insensitive type and parameter name', () => {
  assert.equal(multipartBoundary(`multipart/form-data; boundary=${B}`), B);
  assert.equal(multipartBoundary(`Multipart/Form-Data;BOUNDARY="${B}"`), B);
  assert.equal(multipartBoundary(`multipart/form-data; charset=utf-8; boundary="a b"; `), 'a b');
  const special = "'()+_,-./:=? 0aZ";
  assert.equal(multipartBoundary(`multipart/form-data; boundary="${special}"`), special);
  assert.equal(multipartBoundary(`multipart/form-data; boundary=${'b'.repeat(70)}`), 'b'.repeat(70));
});

test('multipartBoundary: rejects non-multipart and bad or missing boundaries', () => {
  for (const ct of [
    undefined,
    '',
    'application/json',
    `multipart/mixed; boundary=${B}`,
    'multipart/form-data',
    'multipart/form-data; boundary=',
    'multipart/form-data; boundary=""',
    `multipart/form-data; boundary=${'b'.repeat(71)}`,
    'multipart/form-data; boundary="ends with space "',
    'multipart/form-data; boundary="bad*char"',
    'multipart/form-data; boundary="unterminated',
  ]) {
    expectError('MALFORMED_UPLOAD', () => multipartBoundary(ct));
  }
});

// ---- body structure --------------------------------------------------------------------------

test('empty update: only the closing delimiter', () => {
  assert.deepEqual(parse(`--${B}--\r\n`), []);
  assert.deepEqual(parse(`--${B}--`), []);
  assert.deepEqual(parse(`--${B}--\r\n`, { maxParts: 0, maxPartBytes: 0 }), []);
});

test('preamble and epilogue are ignored', () => {
  const parts = parse(`preamble line\r\n--${B}x not a delimiter\r\n${part('root', '{"a":1}')}--${B}--\r\nepilogue\r\n--${B}\r\n`);
  assert.deepEqual(
    parts.map((p) => [p.filename, p.data.toString()]),
    [['root', '{"a":1}']],
  );
});

test('quoted boundary with special characters', () => {
  const boundary = multipartBoundary(`multipart/form-data; boundary="=_a'(b)+c,d-e.f/g:h?i j"`);
  const body = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="root"\r\n\r\nR\r\n--${boundary}--\r\n`);
  assert.deepEqual(
    parseMultipart(body, boundary, LIMITS).map((p) => p.data.toString()),
    ['R'],
  );
});

test('bare LF line endings, as tolerated by Go', () => {
  const body = `--${B}\ncontent-disposition: form-data; name=files; filename=root\n\nR1\r\n--${B}  \nContent-Disposition: form-data; filename="targets"\n\n\n--${B}--\n`;
  const parts = parse(body);
  // In LF mode the delimiter starts at the "\n", so a "\r" before it stays in the data.
  assert.deepEqual(
    parts.map((p) => [p.filename, p.fieldName, p.data.toString()]),
    [
      ['root', 'files', 'R1\r'],
      ['targets', null, ''],
    ],
  );
});

test('filename kept verbatim: slashes, .json suffix, escapes; filename* takes precedence', () => {
  const parts = parse(
    part('targets/releases.json', 'A') +
      `--${B}\r\nContent-Disposition: form-data; name="files"; filename="targets/a\\"b\\\\c"\r\n\r\nB\r\n` +
      `--${B}\r\nContent-Disposition: form-data; name="files"; filename="fallback"; filename*=UTF-8''targets%2Fr%C3%A9l\r\n\r\nC\r\n` +
      `--${B}\r\nContent-Disposition: form-data; filename*=utf-8'en'targets%2Fx; name=files\r\n\r\nD\r\n` +
      // Like Go: a backslash before a non-tspecial is literal (MSIE sends raw Windows paths).
      `--${B}\r\nContent-Disposition: form-data; filename="C:\\dir\\x"\r\n\r\nE\r\n` +
      `--${B}--\r\n`,
  );
  assert.deepEqual(
    parts.map((p) => [p.filename, p.data.toString()]),
    [
      ['targets/releases.json', 'A'],
      ['targets/a"b\\c', 'B'],
      ['targets/rél', 'C'],
      ['targets/x', 'D'],
      ['C:\\dir\\x', 'E'],
    ],
  );
});

test('missing, empty or unparseable filename -> NO_FILENAME', () => {
  const withDisposition = (d: string): string => `--${B}\r\nContent-Disposition: ${d}\r\n\r\nX\r\n--${B}--\r\n`;
  expectError('NO_FILENAME', () => parse(withDisposition('form-data; name="files"')));
  expectError('NO_FILENAME', () => parse(withDisposition('form-data; name="files"; filename=""')));
  expectError('NO_FILENAME', () => parse(withDisposition('form-data; name="files"; filename="root"; filename="targets"')));
  expectError('NO_FILENAME', () => parse(withDisposition("form-data; filename*=latin1''root")));
  expectError('NO_FILENAME', () => parse(`--${B}\r\nContent-Type: application/octet-stream\r\n\r\nX\r\n--${B}--\r\n`));
  expectError('NO_FILENAME', () => parse(`--${B}\r\n\r\nX\r\n--${B}--\r\n`));
});

test('malformed bodies -> MALFORMED_UPLOAD', () => {
  const cases = [
    '', // no delimiter at all
    'just some text',
    `--${B}`, // delimiter line without newline
    part('root', '{}'), // truncated: no closing delimiter
    part('root', '{}').slice(0, -5),
    `--${B}\r\nContent-Disposition: form-data; filename="root"\r\n{}\r\n--${B}--\r\n`, // no blank line after headers
    `--${B}\r\nContent-Disposition: form-data; filename="root"`, // headers never end
    `--${B}\r\nno colon here\r\n\r\n{}\r\n--${B}--\r\n`,
    `--${B}\r\nContent-Disposition: form-data; filename="root"\r\n\r\n{}\r\n--${B}--garbage\r\n`,
    `--${B}\r\nContent-Disposition: form-data; filename="root"\r\n\r\n{}\r\n--${B} x\r\n`,
    `--${B}\r\nContent-Disposition: form-data; filename="root"\r\n\r\n{}\r\n--${B}`,
    `--${B}\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n{}\r\n--${B}--\r\n`, // header section over the cap
  ];
  for (const body of cases) expectError('MALFORMED_UPLOAD', () => parse(body));
  expectError('MALFORMED_UPLOAD', () => parseMultipart(Buffer.from(`----\r\n`), '', LIMITS));
});

test('limits: TOO_MANY_PARTS and PART_TOO_LARGE', () => {
  const three = part('root', 'a') + part('targets', 'b') + part('snapshot', 'c') + `--${B}--\r\n`;
  assert.equal(parse(three, { maxParts: 3, maxPartBytes: 1 }).length, 3);
  expectError('TOO_MANY_PARTS', () => parse(three, { maxParts: 2, maxPartBytes: 1 }));
  const big = part('root', 'x'.repeat(11)) + `--${B}--\r\n`;
  assert.equal(parse(big, { maxParts: 1, maxPartBytes: 11 })[0]!.data.length, 11);
  expectError('PART_TOO_LARGE', () => parse(big, { maxParts: 1, maxPartBytes: 10 }));
});

test('binary data with near-delimiters stays intact', () => {
  const data = Buffer.concat([
    Buffer.from([0, 0xff, 0x0d, 0x0a, 0x2d, 0x2d]),
    Buffer.from(`\r\n--${B.slice(0, 5)}\r\n--${B}X\r\n--${B}-x\r\n-${B}\r\n\r\n--\r\n${B}\n--${B}\n`),
    Buffer.from([0x0d, 0x0a, 0x2d, 0x2d, 0x0d]),
  ]);
  const body = Buffer.concat([
    Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="files"; filename="targets/bin"\r\n\r\n`),
    data,
    Buffer.from(`\r\n--${B}\r\nContent-Disposition: form-data; filename=e\r\n\r\n--${B}--\r\n`),
  ]);
  const parts = parse(body);
  assert.equal(parts.length, 2);
  assert.ok(parts[0]!.data.equals(data));
  assert.equal(parts[1]!.data.length, 0); // "--boundary" straight after the headers: an empty part
});

test('adversarial input: 5 MiB of near-delimiters is linear', () => {
  const unit = Buffer.from(`\r\n--${'b'.repeat(59)}`);
  const boundary = 'b'.repeat(60);
  const filler = Buffer.alloc(5 * 1024 * 1024);
  for (let i = 0; i < filler.length; i += unit.length) unit.copy(filler, i);
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; filename="root"\r\n\r\n`);

  let start = performance.now();
  expectError('MALFORMED_UPLOAD', () => parseMultipart(Buffer.concat([head, filler]), boundary, LIMITS));
  expectError('MALFORMED_UPLOAD', () => parseMultipart(filler, boundary, LIMITS)); // preamble scan
  const closed = Buffer.concat([head, filler, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  const parts = parseMultipart(closed, boundary, { maxParts: 1, maxPartBytes: 8 * 1024 * 1024 });
  assert.ok(parts[0]!.data.equals(filler));
  assert.ok(performance.now() - start < 1000, 'near-delimiters must not cause quadratic work');

  // Thousands of full delimiters each followed by a non-delimiter char are data, not errors.
  const nearFull = Buffer.from(`\r\n--${boundary}X`.repeat(50_000));
  start = performance.now();
  const body = Buffer.concat([head, nearFull, Buffer.from(`\r\n--${boundary}--`)]);
  assert.ok(parseMultipart(body, boundary, { maxParts: 1, maxPartBytes: 1e7 })[0]!.data.equals(nearFull));
  assert.ok(performance.now() - start < 1000);
});
