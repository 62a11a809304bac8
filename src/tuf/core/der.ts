/**
 * Writing DER (ITU-T X.690) by hand: the few ASN.1 types that certificates and PKCS#8 key files
 * need. Pure: bytes in, bytes out. Used where the bytes must be exactly what Go's encoding/asn1
 * writes, which Node's crypto does not promise (its key and certificate encoders are OpenSSL's).
 */

/** The DER length octets for a content of `n` bytes (short form below 128, else long form). */
export function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One tag-length-value with the given (single-byte) tag. */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

export const sequence = (...content: Buffer[]): Buffer => tlv(0x30, ...content);
export const set = (...content: Buffer[]): Buffer => tlv(0x31, ...content);
export const octetString = (bytes: Buffer): Buffer => tlv(0x04, bytes);
export const derNull = (): Buffer => Buffer.from([0x05, 0x00]);
export const boolean = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
/** [n] EXPLICIT / constructed context-specific tag. */
export const explicit = (n: number, ...content: Buffer[]): Buffer => tlv(0xa0 | n, ...content);

/** A BIT STRING of whole bytes, or with `unusedBits` trailing bits of the last byte unused. */
export function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.from([unusedBits]), bytes);
}

/** An OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk: number[] = [];
    for (let v = n; ; v = Math.floor(v / 128)) {
      chunk.unshift((v & 0x7f) | (chunk.length ? 0x80 : 0));
      if (v < 128) break;
    }
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/**
 * An INTEGER: a non-negative safe integer, or the big-endian magnitude of a non-negative one. The
 * encoding is minimal, as DER requires: no redundant leading zero, one added when the top bit is set.
 */
export function integer(value: number | Buffer): Buffer {
  let bytes: Buffer;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError('DER integers here are non-negative safe integers');
    const out: number[] = [];
    for (let v = value; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
    bytes = Buffer.from(out);
  } else {
    let i = 0;
    while (i < value.length && value[i] === 0) i++;
    bytes = value.subarray(i);
  }
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

/**
 * A certificate validity time as Go writes it: UTCTime (YYMMDDHHMMSSZ) for the years 1950 to 2049,
 * GeneralizedTime (YYYYMMDDHHMMSSZ) outside them (RFC 5280 §4.1.2.5); fractions of a second dropped.
 */
export function derTime(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

/** Characters Go's encoding/asn1 writes as a PrintableString ('*' and '&' not among them); any other makes it UTF8String. */
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** A directory string as Go's pkix.Name marshals it: PrintableString when it can, else UTF8String. */
export function directoryString(text: string): Buffer {
  return PRINTABLE.test(text) ? tlv(0x13, Buffer.from(text, 'latin1')) : tlv(0x0c, Buffer.from(text, 'utf8'));
}
