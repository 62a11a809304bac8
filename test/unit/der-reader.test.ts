import { test } from 'node:test';
import assert from 'node:assert/strict';
import { integer, octetString, oid, sequence, tlv } from '../../src/tuf/core/der.js';
import { children, DerError, expectTag, readOctetString, readOid, readSmallInteger, readTlv } from '../../src/tuf/core/der-reader.js';
import { SignetError } from '../../src/tuf/core/signet-error.js';

const top = (buf: Buffer) => readTlv(buf, 0, buf.length);

/** Asserts a DerError with this fault and message. */
function refuses(fn: () => unknown, fault: DerError['fault'], message: string | RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DerError && err instanceof SignetError);
    assert.equal(err.code, 'DER_MALFORMED');
    assert.equal(err.fault, fault);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

test('readTlv reads short and long lengths', () => {
  const short = octetString(Buffer.from('abc'));
  assert.deepEqual(top(short), { tag: 0x04, start: 2, end: 5 });
  const long = octetString(Buffer.alloc(300, 7));
  assert.deepEqual(top(long), { tag: 0x04, start: 4, end: 304 });
});

test('readTlv refuses truncated input, bad lengths, lengths beyond the data and high tag numbers', () => {
  refuses(() => top(Buffer.from([0x30])), 'truncated', 'truncated DER');
  refuses(() => top(Buffer.alloc(0)), 'truncated', 'truncated DER');
  refuses(() => top(Buffer.from([0x30, 0x80, 0x00, 0x00])), 'length', 'bad DER length'); // indefinite length
  refuses(() => top(Buffer.from([0x04, 0x85, 1, 0, 0, 0, 0])), 'length', 'bad DER length'); // five length bytes
  refuses(() => top(Buffer.from([0x04, 0x82, 0x01])), 'length', 'bad DER length'); // length bytes cut short
  refuses(() => top(Buffer.from([0x04, 0x05, 1, 2])), 'beyond', 'DER length beyond data');
  refuses(() => top(Buffer.from([0x04, 0x81, 0x80, 1])), 'beyond', 'DER length beyond data');
  refuses(() => top(Buffer.from([0x1f, 0x81, 0x00])), 'tag', 'unsupported DER tag');
  refuses(() => top(Buffer.from([0xbf, 0x01, 0x00])), 'tag', 'unsupported DER tag');
});

test('children reads nested values, each within its parent', () => {
  const der = sequence(integer(1), sequence(oid('1.2.840.10045.2.1'), octetString(Buffer.from('x'))), octetString(Buffer.from('key')));
  const [version, inner, key, ...rest] = children(der, expectTag(top(der), 0x30, 'a SEQUENCE'));
  assert.equal(rest.length, 0);
  assert.equal(readSmallInteger(der, version), 1);
  const [algorithm, param] = children(der, expectTag(inner, 0x30, 'an AlgorithmIdentifier'));
  assert.equal(readOid(der, algorithm), '1.2.840.10045.2.1');
  assert.equal(readOctetString(der, param).toString(), 'x');
  assert.equal(readOctetString(der, key).toString(), 'key');
  assert.deepEqual(children(der, expectTag(top(sequence()), 0x30, 'a SEQUENCE')), []);

  // A child whose length runs past its parent (though not past the buffer) is refused.
  const overrun = Buffer.concat([Buffer.from([0x30, 0x03, 0x04, 0x05, 0x00]), Buffer.alloc(8)]);
  refuses(() => children(overrun, top(overrun)), 'beyond', 'DER length beyond data');
  refuses(() => expectTag(undefined, 0x30, 'a SEQUENCE'), 'expected', 'expected a SEQUENCE');
  refuses(() => readOctetString(der, version, 'the key'), 'expected', 'expected the key');
});

test('readOid decodes arcs beyond 2^53 exactly and refuses empty or unterminated identifiers', () => {
  // 2.25.<UUID as an integer> (X.667): a 128-bit arc.
  const arc = 329800735698586629295641978511506172918n;
  const base128: number[] = [];
  for (let v = arc; v > 0n; v >>= 7n) base128.unshift(Number(v & 0x7fn) | (base128.length ? 0x80 : 0));
  const der = tlv(0x06, Buffer.from([2 * 40 + 25, ...base128]));
  assert.equal(readOid(der, top(der)), `2.25.${arc}`);
  const big = tlv(0x06, Buffer.from([0x88, 0x37, 0x01])); // first sub-identifier 1079: 2.999
  assert.equal(readOid(big, top(big)), '2.999.1');

  const empty = tlv(0x06, Buffer.alloc(0));
  refuses(() => readOid(empty, top(empty)), 'oid', 'empty OBJECT IDENTIFIER');
  const open = tlv(0x06, Buffer.from([0x2a, 0x86]));
  refuses(() => readOid(open, top(open)), 'oid', 'unterminated OBJECT IDENTIFIER');
  const int = integer(5);
  refuses(() => readOid(int, top(int), 'an extension OID'), 'expected', 'expected an extension OID');
});

test('readSmallInteger takes up to six content bytes, non-negative', () => {
  const der = integer(2048);
  assert.equal(readSmallInteger(der, top(der)), 2048);
  for (const bad of [tlv(0x02, Buffer.alloc(0)), tlv(0x02, Buffer.from([0x80])), tlv(0x02, Buffer.alloc(7, 1))]) {
    refuses(() => readSmallInteger(bad, top(bad)), 'integer', 'INTEGER out of range');
  }
});
