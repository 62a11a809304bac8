/**
 * Compact JWS (JSON Web Signature) as registry tokens use it: `header.payload.signature`, each
 * base64url. Only asymmetric algorithms exist here: a trust server never shares a secret.
 */
import { constants, createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { SignetError } from '../tuf/core/signet-error.js';

export class TokenFormatError extends SignetError {
  readonly code = 'TOKEN_FORMAT';
  override name = 'TokenFormatError';
}

export interface JwsHeader {
  alg: string;
  typ?: string;
  kid?: string;
  x5c?: string[];
  jwk?: Record<string, unknown>;
}

export interface ParsedJws {
  header: JwsHeader;
  payload: Record<string, unknown>;
  signingInput: Buffer;
  signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodeJsonPart(part: string, what: string): Record<string, unknown> {
  if (!B64URL.test(part)) throw new TokenFormatError(`token ${what} is not base64url`);
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new TokenFormatError(`token ${what} is not a JSON object`);
  }
}

export function parseJws(token: string): ParsedJws {
  if (token.length > 64 * 1024) throw new TokenFormatError('token too long');
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenFormatError('token is not a compact JWS');
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJsonPart(h, 'header') as unknown as JwsHeader;
  if (typeof header.alg !== 'string') throw new TokenFormatError('token header has no alg');
  if (!B64URL.test(s)) throw new TokenFormatError('token signature is not base64url');
  return { header, payload: decodeJsonPart(p, 'payload'), signingInput: Buffer.from(`${h}.${p}`), signature: Buffer.from(s, 'base64url') };
}

type Params = { hash: string | null; kind: 'ec' | 'rsa' | 'rsa-pss' | 'ed25519'; curve?: string };
const ALGORITHMS: Record<string, Params> = {
  ES256: { hash: 'sha256', kind: 'ec', curve: 'prime256v1' },
  ES384: { hash: 'sha384', kind: 'ec', curve: 'secp384r1' },
  ES512: { hash: 'sha512', kind: 'ec', curve: 'secp521r1' },
  RS256: { hash: 'sha256', kind: 'rsa' },
  RS384: { hash: 'sha384', kind: 'rsa' },
  RS512: { hash: 'sha512', kind: 'rsa' },
  PS256: { hash: 'sha256', kind: 'rsa-pss' },
  PS384: { hash: 'sha384', kind: 'rsa-pss' },
  PS512: { hash: 'sha512', kind: 'rsa-pss' },
  EdDSA: { hash: null, kind: 'ed25519' },
};

/** Whether `jws` is signed by `key` with the algorithm its header names (and the key fits it). */
export function verifyJws(jws: ParsedJws, key: KeyObject): boolean {
  const params = ALGORITHMS[jws.header.alg];
  if (!params) return false;
  const type = key.asymmetricKeyType;
  if ((params.kind === 'ec' && type !== 'ec') || (params.kind.startsWith('rsa') && type !== 'rsa') || (params.kind === 'ed25519' && type !== 'ed25519')) {
    return false;
  }
  // Each ES algorithm names its curve (RFC 7518 §3.4); a key on another curve does not qualify.
  if (params.curve && key.asymmetricKeyDetails?.namedCurve !== params.curve) return false;
  try {
    if (params.kind === 'ec') return verify(params.hash, jws.signingInput, { key, dsaEncoding: 'ieee-p1363' }, jws.signature);
    if (params.kind === 'rsa-pss') {
      return verify(
        params.hash,
        jws.signingInput,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
        jws.signature,
      );
    }
    return verify(params.hash, jws.signingInput, key, jws.signature);
  } catch {
    return false;
  }
}

/** Sign a compact JWS (used by the development token service and tests). */
export function signJws(header: JwsHeader, payload: object, key: KeyObject): string {
  const params = ALGORITHMS[header.alg];
  if (!params) throw new TokenFormatError(`unsupported alg ${header.alg}`);
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const signature =
    params.kind === 'ec'
      ? sign(params.hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
      : params.kind === 'rsa-pss'
        ? sign(params.hash, Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST })
        : sign(params.hash, Buffer.from(input), key);
  return `${input}.${signature.toString('base64url')}`;
}

/**
 * libtrust key ID (what registry token services put in `kid`): base32 of the first 240 bits of
 * sha256 over the SubjectPublicKeyInfo, in twelve colon-separated groups of four.
 */
export function libtrustKeyId(key: KeyObject): string {
  const digest: Buffer = createHash('sha256')
    .update((key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'der' }))
    .digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest.subarray(0, 30)) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out.match(/.{4}/g)!.join(':');
}
