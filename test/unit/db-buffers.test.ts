/** Bytes read from the database are held in memory of their own, not in a view of a larger buffer. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ownCopy, toBuffer } from '../../src/storage/db.js';

test('a small Buffer from the shared pool is copied out of it', () => {
  const pooled = Buffer.from('a timestamp file');
  assert.ok(pooled.buffer.byteLength > pooled.length, 'Node puts a small Buffer in its shared pool');
  const held = toBuffer(pooled);
  assert.ok(held.equals(pooled));
  assert.equal(held.buffer.byteLength, held.length);
});

test('a view into a larger Uint8Array is copied; a whole buffer is kept as it is', () => {
  const big = new Uint8Array(1024).fill(7);
  const view = big.subarray(10, 20);
  const held = toBuffer(view);
  assert.equal(held.length, 10);
  assert.equal(held.buffer.byteLength, 10);
  big[10] = 1;
  assert.equal(held[0], 7, 'the copy does not change with the original');

  const whole = Buffer.allocUnsafeSlow(16).fill(1);
  assert.equal(toBuffer(whole), whole);
  const u8 = new Uint8Array(8);
  assert.equal(toBuffer(u8).buffer, u8.buffer);
  assert.ok(Buffer.isBuffer(toBuffer(u8)));
  assert.equal(ownCopy(whole).buffer.byteLength, 16);
});
