import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLastModified, formatRfc3339, parseRfc3339 } from '../../src/tuf/core/time.js';

test('parseRfc3339 reads nanosecond fractions (truncated to milliseconds) and Z', () => {
  assert.equal(parseRfc3339('2116-07-03T23:08:08.447842546Z'), Date.UTC(2116, 6, 3, 23, 8, 8, 447));
  assert.equal(parseRfc3339('2026-11-23T08:20:16.5Z'), Date.UTC(2026, 10, 23, 8, 20, 16, 500));
  assert.equal(parseRfc3339('2026-11-23T08:20:16Z'), Date.UTC(2026, 10, 23, 8, 20, 16));
});

test('parseRfc3339 applies numeric offsets', () => {
  assert.equal(parseRfc3339('2116-07-03T17:56:36.027379879-05:00'), Date.UTC(2116, 6, 3, 22, 56, 36, 27));
  assert.equal(parseRfc3339('2026-01-01T01:30:00+01:30'), Date.UTC(2026, 0, 1, 0, 0, 0));
  assert.equal(parseRfc3339('2026-01-01T00:00:00+00:00'), parseRfc3339('2026-01-01T00:00:00Z'));
});

test('parseRfc3339 accepts 29 February in leap years only', () => {
  assert.equal(parseRfc3339('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
  assert.equal(parseRfc3339('2023-02-29T00:00:00Z'), null);
});

test('parseRfc3339 returns null for impossible dates and times', () => {
  for (const text of [
    '2026-02-30T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-00-10T00:00:00Z',
    '2026-01-00T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T23:60:00Z',
    '2026-01-01T23:59:60Z',
    '2026-01-01T00:00:00+24:00',
    '2026-01-01T00:00:00+01:60',
  ]) {
    assert.equal(parseRfc3339(text), null, text);
  }
});

test('parseRfc3339 returns null for text that is not RFC 3339', () => {
  for (const text of [
    '2026-01-01T00:00:00', // no zone
    '2026-01-01t00:00:00Z', // lower-case t
    '2026-01-01T00:00:00z', // lower-case z
    '2026-01-01 00:00:00Z',
    '2026-01-01',
    '2026-01-01T00:00:00.Z',
    '2026-01-01T00:00:00.1234567890Z',
    '2026-01-01T00:00Z',
    '2026-1-01T00:00:00Z',
    '2026-01-01T00:00:00+0100',
    ' 2026-01-01T00:00:00Z',
    '',
  ]) {
    assert.equal(parseRfc3339(text), null, JSON.stringify(text));
  }
});

// Go reads years 0000-0099 literally (its zero time is 0001-01-01T00:00:00Z); Date.UTC maps
// them to 1900-1999.
test('parseRfc3339 reads years below 100 literally, as Go does', () => {
  assert.equal(parseRfc3339('0001-01-01T00:00:00Z'), -62_135_596_800_000);
  assert.equal(parseRfc3339('0099-12-31T23:59:59Z'), new Date('0099-12-31T23:59:59Z').getTime());
  // Year 0 is a leap year in the proleptic Gregorian calendar (1900 is not).
  assert.equal(parseRfc3339('0000-02-29T00:00:00Z'), new Date('0000-02-29T00:00:00Z').getTime());
});

test('formatRfc3339 writes UTC with trailing zeros of the fraction trimmed', () => {
  assert.equal(formatRfc3339(Date.UTC(2026, 10, 23, 8, 20, 16, 500)), '2026-11-23T08:20:16.5Z');
  assert.equal(formatRfc3339(Date.UTC(2026, 10, 23, 8, 20, 16, 120)), '2026-11-23T08:20:16.12Z');
  assert.equal(formatRfc3339(Date.UTC(2026, 10, 23, 8, 20, 16, 7)), '2026-11-23T08:20:16.007Z');
  assert.equal(formatRfc3339(Date.UTC(2026, 10, 23, 8, 20, 16, 123)), '2026-11-23T08:20:16.123Z');
});

test('formatRfc3339 omits a zero fraction without touching the seconds', () => {
  assert.equal(formatRfc3339(Date.UTC(2026, 10, 23, 8, 20, 10)), '2026-11-23T08:20:10Z');
  assert.equal(formatRfc3339(Date.UTC(2026, 10, 23, 8, 20, 0)), '2026-11-23T08:20:00Z');
  assert.equal(formatRfc3339(Date.UTC(2000, 0, 1)), '2000-01-01T00:00:00Z');
});

test('formatRfc3339 output parses back to the same instant', () => {
  for (const ms of [0, 1, 999, Date.UTC(2029, 10, 22, 8, 20, 16, 658), Date.UTC(2116, 6, 3, 23, 8, 8, 440)]) {
    assert.equal(parseRfc3339(formatRfc3339(ms)), ms, String(ms));
  }
});

test('formatLastModified writes RFC 1123 in UTC ending with "UTC"', () => {
  assert.equal(formatLastModified(Date.UTC(2026, 0, 5, 8, 20, 16, 999)), 'Mon, 05 Jan 2026 08:20:16 UTC');
  assert.equal(formatLastModified(Date.UTC(2026, 10, 23, 23, 0, 0)), 'Mon, 23 Nov 2026 23:00:00 UTC');
  assert.match(formatLastModified(Date.now()), / UTC$/);
});
