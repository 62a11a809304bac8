/**
 * Reading DER (ITU-T X.690), bounds-checked: the reader behind certificates and private key
 * files. Pure: it only looks at the bytes it is given and never copies them (a TLV is a pair of
 * offsets into the caller's buffer). The writer is der.ts.
 *
 * Strict on purpose: single-byte tags only (no high tag numbers), definite lengths of at most
 * four length bytes, every value inside its parent. Any malformation is a DerError, which each
 * caller turns into its own error (CertificateError, KeyStoreError).
 */
import { SignetError } from './signet-error.js';

/** What was wrong, for callers that word some faults their own way. */
export type DerFault = 'truncated' | 'tag' | 'length' | 'beyond' | 'expected' | 'oid' | 'integer' | 'content';

export class DerError extends SignetError {
  readonly code = 'DER_MALFORMED';
  override name = 'DerError';
  readonly fault: DerFault;

  constructor(message: string, fault: DerFault = 'content', options?: { cause?: unknown }) {
    super(message, options);
    this.fault = fault;
  }
}

/** One tag-length-value: its tag and where its content lies in the buffer. */
export interface Tlv {
  tag: number;
  start: number; // first content byte
  end: number; // one past the last content byte
}

/** The TLV at `pos`, which must end by `limit`. */
export function readTlv(buf: Buffer, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new DerError('truncated DER', 'truncated');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('unsupported DER tag', 'tag');
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // Nothing read here comes near 4 GiB; indefinite length (n = 0) is not DER.
    if (n === 0 || n > 4 || p + n > limit) throw new DerError('bad DER length', 'length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  }
  if (p + len > limit) throw new DerError('DER length beyond data', 'beyond');
  return { tag, start: p, end: p + len };
}

/** The TLVs directly inside a constructed value. */
export function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.start; pos < parent.end;) {
    const tlv = readTlv(buf, pos, parent.end);
    out.push(tlv);
    pos = tlv.end;
  }
  return out;
}

/** `tlv` if it is there with this tag; `what` names it in the error ("expected …"). */
export function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag) throw new DerError(`expected ${what}`, 'expected');
  return tlv;
}

/** The content bytes of a TLV (a view, not a copy). */
export const contents = (buf: Buffer, tlv: Tlv): Buffer => buf.subarray(tlv.start, tlv.end);

/** The content of an OCTET STRING. */
export function readOctetString(buf: Buffer, tlv: Tlv | undefined, what = 'an OCTET STRING'): Buffer {
  return contents(buf, expectTag(tlv, 0x04, what));
}

/** A non-negative INTEGER of at most six content bytes (versions, iteration counts, lengths). */
export function readSmallInteger(buf: Buffer, tlv: Tlv | undefined, what = 'an INTEGER'): number {
  const i = expectTag(tlv, 0x02, what);
  const n = i.end - i.start;
  if (n < 1 || n > 6 || buf[i.start]! & 0x80) throw new DerError('INTEGER out of range', 'integer');
  return buf.readUIntBE(i.start, n);
}

/** An OBJECT IDENTIFIER in dotted form; arcs of any size (bigint). */
export function readOid(buf: Buffer, tlv: Tlv | undefined, what = 'an OBJECT IDENTIFIER'): string {
  const o = expectTag(tlv, 0x06, what);
  const arcs: bigint[] = [];
  let value = 0n;
  let open = false;
  for (let p = o.start; p < o.end; p++) {
    const b = buf[p]!;
    value = (value << 7n) | BigInt(b & 0x7f);
    open = (b & 0x80) !== 0;
    if (!open) {
      arcs.push(value);
      value = 0n;
    }
  }
  if (arcs.length === 0) throw new DerError('empty OBJECT IDENTIFIER', 'oid');
  if (open) throw new DerError('unterminated OBJECT IDENTIFIER', 'oid');
  // The first sub-identifier packs the first two arcs as 40 * first + second.
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}
