/**
 * The current-metadata cache: what it hands back, and when it must not (disabled, invalidated
 * while a read was in flight, over its bounds).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CurrentMetadataCache } from '../../src/service/current-cache.js';
import type { CurrentChain } from '../../src/service/repository-state.js';
import type { StoredFileRow } from '../../src/storage/metadata-store.js';
import { parseSignedFile } from '../../src/tuf/notary/metadata.js';
import { ecdsaKey, inDays, metaOf, signFile, snapshotDoc } from '../support/tuf-kit.js';

const key = ecdsaKey();

function row(role: string, version: number, data: Buffer): StoredFileRow {
  return { role, version, sha256: 'x'.repeat(64), data, createdAt: new Date() };
}

function chainOf(version: number): CurrentChain {
  const snapshot = signFile(snapshotDoc({ version, files: {} }), [key]);
  const timestamp = signFile({ _type: 'Timestamp', expires: inDays(14), meta: { snapshot: metaOf(snapshot) }, version }, [key]);
  return {
    timestamp: { row: row('timestamp', version, timestamp), file: parseSignedFile('timestamp', timestamp) },
    snapshot: { row: row('snapshot', version, snapshot), file: parseSignedFile('snapshot', snapshot) },
  };
}

const G = 'registry.example.com/cache/app';

test('what is stored with a current token is handed back: chain, roles (also "none"), rows by checksum', () => {
  const cache = new CurrentMetadataCache(true);
  const token = cache.version(G);
  const chain = chainOf(1);
  cache.storeChain(G, token, chain);
  cache.storeRole(G, token, 'targets', row('targets', 1, Buffer.from('t')));
  cache.storeRole(G, token, 'targets/missing', null);
  cache.storeChecksum(G, token, 'c:root:abc', row('root', 1, Buffer.from('r')));
  assert.equal(cache.chain(G), chain);
  assert.equal(cache.role(G, 'targets')?.version, 1);
  assert.equal(cache.role(G, 'targets/missing'), null, 'a role known to be absent is cached as null');
  assert.equal(cache.role(G, 'targets/other'), undefined, 'an unknown role is a miss');
  assert.equal(cache.checksum(G, 'c:root:abc')?.role, 'root');
  assert.equal(cache.chain('registry.example.com/cache/other'), undefined);
});

test('invalidating a repository drops what is cached for it, and only for it', () => {
  const cache = new CurrentMetadataCache(true);
  const other = 'registry.example.com/cache/other';
  cache.storeChain(G, cache.version(G), chainOf(1));
  cache.storeChain(other, cache.version(other), chainOf(1));
  cache.invalidate(G);
  assert.equal(cache.chain(G), undefined);
  assert.ok(cache.chain(other));
});

test('a read that started before a change is not cached: its token is stale', () => {
  const cache = new CurrentMetadataCache(true);
  const token = cache.version(G);
  cache.invalidate(G); // a write committed while the read was in flight
  cache.storeChain(G, token, chainOf(1));
  cache.storeRole(G, token, 'targets', row('targets', 1, Buffer.from('t')));
  cache.storeChecksum(G, token, 'v:targets:1', row('targets', 1, Buffer.from('t')));
  assert.equal(cache.chain(G), undefined);
  assert.equal(cache.role(G, 'targets'), undefined);
  assert.equal(cache.checksum(G, 'v:targets:1'), undefined);
  const fresh = cache.version(G);
  assert.notEqual(fresh, token);
  cache.storeChain(G, fresh, chainOf(2));
  assert.equal(cache.chain(G)?.timestamp.file.version, 2);
});

test('a disabled cache serves nothing; enabling it again starts empty and refuses tokens from before', () => {
  const off = new CurrentMetadataCache(false);
  off.storeChain(G, off.version(G), chainOf(1));
  assert.equal(off.chain(G), undefined);

  const cache = new CurrentMetadataCache(true);
  const before = cache.version(G);
  cache.storeChain(G, before, chainOf(1));
  cache.setEnabled(false);
  assert.equal(cache.chain(G), undefined);
  cache.setEnabled(true);
  assert.equal(cache.chain(G), undefined, 'what was cached before the outage is gone');
  cache.storeChain(G, before, chainOf(1));
  assert.equal(cache.chain(G), undefined, 'a read begun before the outage may have missed a change');
});

test('bounded: the oldest repository makes room, and too many bytes start the cache over', () => {
  const small = new CurrentMetadataCache(true, 2);
  for (const gun of ['a', 'b', 'c']) small.storeChain(gun, small.version(gun), chainOf(1));
  assert.equal(small.chain('a'), undefined);
  assert.ok(small.chain('b') && small.chain('c'));

  const tight = new CurrentMetadataCache(true, 100, 1000);
  tight.storeRole(G, tight.version(G), 'targets', row('targets', 1, Buffer.alloc(600)));
  assert.ok(tight.role(G, 'targets'));
  tight.storeRole(G, tight.version(G), 'targets/a', row('targets/a', 1, Buffer.alloc(600)));
  assert.equal(tight.role(G, 'targets'), undefined, 'past the byte bound everything is dropped');
});
