/**
 * The recorded notary 0.7 session is self-consistent under our hashing: snapshot and timestamp
 * meta entries match the exact bytes of the files they describe (notary-protocol.md §2.4, §3.3).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { checkHashes, fileMeta } from '../../src/tuf/core/hashes.js';
import { multipartBoundary, parseMultipart } from '../../src/http/multipart.js';
import { notarySessionDir } from '../support/paths.js';

interface MetaEntry {
  hashes: Record<string, string>;
  length: number;
}

const metadata = (file: string) => readFileSync(path.join(notarySessionDir, 'metadata', file));
const metaOf = (bytes: Buffer) => (JSON.parse(bytes.toString('utf8')) as { signed: { meta: Record<string, MetaEntry> } }).signed.meta;

/** The uploaded parts of one recorded POST, by role, as the server's multipart parser sees them. */
function requestParts(prefix: string): Map<string, Buffer> {
  const dir = path.join(notarySessionDir, 'requests');
  const headers = JSON.parse(readFileSync(path.join(dir, `${prefix}-post-headers.json`), 'utf8')) as Record<string, string>;
  const body = readFileSync(path.join(dir, `${prefix}-post-body.multipart`));
  const parts = parseMultipart(body, multipartBoundary(headers['content-type']), { maxParts: 10, maxPartBytes: 1 << 20 });
  return new Map(parts.map((p) => [p.filename, Buffer.from(p.data)]));
}

function assertEntryMatches(entry: MetaEntry | undefined, bytes: Buffer, what: string) {
  assert.ok(entry, `no meta entry for ${what}`);
  assert.ok(entry.hashes['sha256'] && entry.hashes['sha512'], `${what}: both digests listed`);
  assert.equal(checkHashes(bytes, entry.hashes), null, what);
  assert.equal(entry.length, bytes.length, `${what}: length`);
  assert.deepEqual(entry, fileMeta(bytes), what);
}

test('the final snapshot lists the exact hashes and lengths of root, targets and targets/releases', () => {
  const meta = metaOf(metadata('snapshot.json'));
  assert.deepEqual(Object.keys(meta).sort(), ['root', 'targets', 'targets/releases']);
  assertEntryMatches(meta['root'], metadata('root.json'), 'root');
  assertEntryMatches(meta['targets'], metadata('targets.json'), 'targets');
  assertEntryMatches(meta['targets/releases'], metadata('targets_releases.json'), 'targets/releases');
});

test('the final snapshot does not match the first root any more', () => {
  const meta = metaOf(metadata('snapshot.json'));
  assert.equal(checkHashes(metadata('1.root.json'), meta['root']!.hashes), 'sha256 checksum mismatch');
});

test('the timestamp lists the exact hashes and length of the snapshot', () => {
  const meta = metaOf(metadata('timestamp.json'));
  assert.deepEqual(Object.keys(meta), ['snapshot']);
  assertEntryMatches(meta['snapshot'], metadata('snapshot.json'), 'snapshot');
});

test('request 005 (init): the uploaded snapshot matches the uploaded root and targets', () => {
  const parts = requestParts('005');
  assert.deepEqual([...parts.keys()].sort(), ['root', 'snapshot', 'targets']);
  const meta = metaOf(parts.get('snapshot')!);
  assertEntryMatches(meta['root'], parts.get('root')!, '005 root');
  assertEntryMatches(meta['targets'], parts.get('targets')!, '005 targets');
  // The first root the server stored is that upload.
  assert.deepEqual(parts.get('root'), metadata('1.root.json'));
});

test('request 011 (add): the uploaded snapshot matches the uploaded targets and the stored first root', () => {
  const parts = requestParts('011');
  assert.deepEqual([...parts.keys()].sort(), ['snapshot', 'targets']);
  const meta = metaOf(parts.get('snapshot')!);
  assertEntryMatches(meta['targets'], parts.get('targets')!, '011 targets');
  assertEntryMatches(meta['root'], metadata('1.root.json'), '011 root (stored)');
});

test('a snapshot entry does not match bytes that differ by one byte', () => {
  const parts = requestParts('005');
  const targets = Buffer.from(parts.get('targets')!);
  targets[targets.length - 3] ^= 1;
  assert.equal(checkHashes(targets, metaOf(parts.get('snapshot')!)['targets']!.hashes), 'sha256 checksum mismatch');
});
