/**
 * Compact JWS as registry tokens use it (src/auth/jws.ts): signing and verifying with every
 * asymmetric algorithm family, refusal of tampered tokens, of keys that do not fit the header's
 * algorithm and of algorithms that have no place in a trust server (`none`, HMAC), strict
 * parsing, and libtrust key IDs (what token services put in `kid`).
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import { libtrustKeyId, parseJws, signJws, TokenFormatError, verifyJws, type JwsHeader } from '../../src/auth/jws.js';

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const PAYLOAD = { iss: 'issuer', aud: 'service', exp: 2_000_000_000, access: [{ type: 'repository', name: 'example.com/app', actions: ['pull'] }] };

const keys = {
  p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ed25519: generateKeyPairSync('ed25519'),
};

const CASES: { alg: string; pair: { privateKey: KeyObject; publicKey: KeyObject }; sigBytes?: number }[] = [
  { alg: 'ES256', pair: keys.p256, sigBytes: 64 },
  { alg: 'ES384', pair: keys.p384, sigBytes: 96 },
  { alg: 'RS256', pair: keys.rsa, sigBytes: 256 },
  { alg: 'PS256', pair: keys.rsa, sigBytes: 256 },
  { alg: 'EdDSA', pair: keys.ed25519, sigBytes: 64 },
];

/** Replace one of the three parts of a compact JWS. */
function withPart(token: string, index: 0 | 1 | 2, value: string): string {
  const parts = token.split('.');
  parts[index] = value;
  return parts.join('.');
}

describe('signJws / verifyJws', () => {
  for (const { alg, pair, sigBytes } of CASES) {
    test(`${alg}: round trip with the public key`, () => {
      const token = signJws({ alg, typ: 'JWT' }, PAYLOAD, pair.privateKey);
      assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      const jws = parseJws(token);
      assert.deepEqual(jws.header, { alg, typ: 'JWT' });
      assert.deepEqual(jws.payload, PAYLOAD);
      if (sigBytes) assert.equal(jws.signature.length, sigBytes, 'raw (JOSE) signature, not DER');
      assert.equal(verifyJws(jws, pair.publicKey), true);
    });

    test(`${alg}: tampered payload and tampered signature are refused`, () => {
      const token = signJws({ alg }, PAYLOAD, pair.privateKey);
      const escalated = { ...PAYLOAD, access: [{ type: 'repository', name: 'example.com/app', actions: ['*'] }] };
      assert.equal(verifyJws(parseJws(withPart(token, 1, b64url(escalated))), pair.publicKey), false, 'payload changed');
      const sig = Buffer.from(token.split('.')[2]!, 'base64url');
      sig[sig.length >> 1]! ^= 0x01;
      assert.equal(verifyJws(parseJws(withPart(token, 2, sig.toString('base64url'))), pair.publicKey), false, 'signature changed');
      assert.equal(verifyJws(parseJws(withPart(token, 2, '')), pair.publicKey), false, 'signature removed');
      assert.equal(verifyJws(parseJws(withPart(token, 0, b64url({ alg, kid: 'other' }))), pair.publicKey), false, 'header changed');
    });
  }

  test('a token is only valid for the key that signed it', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const token = signJws({ alg: 'ES256' }, PAYLOAD, keys.p256.privateKey);
    assert.equal(verifyJws(parseJws(token), other.publicKey), false);
    const rsaOther = generateKeyPairSync('rsa', { modulusLength: 2048 });
    assert.equal(verifyJws(parseJws(signJws({ alg: 'RS256' }, PAYLOAD, keys.rsa.privateKey)), rsaOther.publicKey), false);
  });

  test('a key that does not fit the header alg is refused', () => {
    // ES256 header, but signed (PKCS#1 v1.5 / SHA-256) and verified with an RSA key.
    const esWithRsa = signJws({ alg: 'ES256' }, PAYLOAD, keys.rsa.privateKey);
    assert.equal(verifyJws(parseJws(esWithRsa), keys.rsa.publicKey), false, 'ES256 header with an RSA key');
    // The same RSA signature relabelled RS256 verifies: the refusal above is about the alg/key pair only.
    const relabelled = withPart(esWithRsa, 0, b64url({ alg: 'RS256' }));
    const rsSig = signJws({ alg: 'RS256' }, PAYLOAD, keys.rsa.privateKey);
    assert.equal(verifyJws(parseJws(rsSig), keys.rsa.publicKey), true);
    assert.equal(verifyJws(parseJws(relabelled), keys.rsa.publicKey), false, 'signing input includes the header');

    const rsWithEc = signJws({ alg: 'ES256' }, PAYLOAD, keys.p256.privateKey);
    assert.equal(verifyJws(parseJws(withPart(rsWithEc, 0, b64url({ alg: 'RS256' }))), keys.p256.publicKey), false, 'RS256 header with an EC key');
    assert.equal(verifyJws(parseJws(signJws({ alg: 'RS256' }, PAYLOAD, keys.rsa.privateKey)), keys.p256.publicKey), false, 'RS256 token, EC key');
    assert.equal(verifyJws(parseJws(signJws({ alg: 'EdDSA' }, PAYLOAD, keys.ed25519.privateKey)), keys.p256.publicKey), false, 'EdDSA token, EC key');
    assert.equal(verifyJws(parseJws(signJws({ alg: 'ES256' }, PAYLOAD, keys.p256.privateKey)), keys.ed25519.publicKey), false, 'ES256 token, Ed25519 key');
    // A DER-encoded ECDSA signature would verify with node's default encoding if the key type
    // were not checked against RS256/PS256.
    for (const alg of ['RS256', 'PS256']) {
      const input = `${b64url({ alg })}.${b64url(PAYLOAD)}`;
      const der = sign('sha256', Buffer.from(input), keys.p256.privateKey);
      assert.equal(verify('sha256', Buffer.from(input), keys.p256.publicKey, der), true, 'the signature itself is sound');
      assert.equal(verifyJws(parseJws(`${input}.${der.toString('base64url')}`), keys.p256.publicKey), false, `${alg} header, DER ECDSA signature, EC key`);
    }
    // PS256 and RS256 are different paddings over the same key type.
    const ps = signJws({ alg: 'PS256' }, PAYLOAD, keys.rsa.privateKey);
    const psSig = ps.split('.')[2]!;
    const asRs = `${b64url({ alg: 'RS256' })}.${ps.split('.')[1]}.${psSig}`;
    assert.equal(verifyJws(parseJws(asRs), keys.rsa.publicKey), false, 'PSS signature under an RS256 header');
  });

  // RFC 7518 §3.4 ties each ES algorithm to one curve; libtrust (notary's token verifier) refuses a mismatch.
  test('an EC key on the wrong curve for the alg is refused (ES256 needs P-256, ES384 P-384, ES512 P-521)', () => {
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
    for (const [alg, pair] of [
      ['ES256', keys.p384],
      ['ES384', keys.p256],
      ['ES512', keys.p256],
      ['ES256', p521],
    ] as const) {
      const token = signJws({ alg }, PAYLOAD, pair.privateKey);
      assert.equal(verifyJws(parseJws(token), pair.publicKey), false, `${alg} with ${pair.publicKey.asymmetricKeyDetails?.namedCurve}`);
    }
  });

  test('unknown algorithms are refused: none, HS256 (even keyed with the public key), anything else', () => {
    const none = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(PAYLOAD)}.`;
    assert.equal(verifyJws(parseJws(none), keys.p256.publicKey), false, 'alg none');
    assert.equal(verifyJws(parseJws(none), keys.rsa.publicKey), false, 'alg none');

    // The classic confusion: an HMAC keyed with the (public) verification key's PEM.
    const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(PAYLOAD)}`;
    for (const pub of [keys.rsa.publicKey, keys.p256.publicKey]) {
      const secret = pub.export({ type: 'spki', format: 'pem' });
      const hs = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      assert.equal(verifyJws(parseJws(hs), pub), false, 'alg HS256');
    }
    for (const alg of ['HS384', 'HS512', 'ES256K', 'Ed25519', 'es256', 'RSA-OAEP', '']) {
      const token = `${b64url({ alg })}.${b64url(PAYLOAD)}.${Buffer.alloc(64, 1).toString('base64url')}`;
      assert.equal(verifyJws(parseJws(token), keys.p256.publicKey), false, `alg ${JSON.stringify(alg)}`);
    }
  });

  test('signJws refuses algorithms it does not know', () => {
    for (const alg of ['none', 'HS256', 'es256']) {
      assert.throws(() => signJws({ alg } as JwsHeader, PAYLOAD, keys.p256.privateKey), TokenFormatError, alg);
    }
  });
});

describe('parseJws', () => {
  const good = signJws({ alg: 'ES256', kid: 'K' }, PAYLOAD, keys.p256.privateKey);
  const [h, p, s] = good.split('.') as [string, string, string];

  test('a well-formed token parses into header, payload, signing input and signature', () => {
    const jws = parseJws(good);
    assert.deepEqual(jws.header, { alg: 'ES256', kid: 'K' });
    assert.deepEqual(jws.payload, PAYLOAD);
    assert.equal(jws.signingInput.toString(), `${h}.${p}`);
    assert.deepEqual(jws.signature, Buffer.from(s, 'base64url'));
  });

  test('anything but three dot-separated parts is refused', () => {
    for (const token of [`${h}.${p}`, `${h}`, '', `${h}.${p}.${s}.${s}`, `${h}..${p}.${s}`]) {
      assert.throws(
        () => parseJws(token),
        (e: unknown) => e instanceof TokenFormatError && /compact JWS/.test(e.message),
        JSON.stringify(token.slice(0, 20)),
      );
    }
  });

  test('parts that are not base64url are refused', () => {
    const std = Buffer.from(JSON.stringify({ alg: 'ES256', x: '>>>???' })).toString('base64'); // has '+' or '/' and '=' padding
    assert.match(std, /[+/=]/);
    for (const [token, what] of [
      [`${std}.${p}.${s}`, 'header'],
      [`${h}.${p}=.${s}`, 'payload'],
      [`${h}.${p}.${s}=`, 'signature'],
      [`${h}.${p}.${s.slice(0, 10)}+${s.slice(10)}`, 'signature'],
      [`${h} .${p}.${s}`, 'header'],
      [`${h}.${p}.${s}\n`, 'signature'],
    ] as const) {
      assert.throws(
        () => parseJws(token),
        (e: unknown) => e instanceof TokenFormatError && e.message.includes(what) && /base64url/.test(e.message),
        token.slice(-12),
      );
    }
  });

  test('header and payload must be JSON objects', () => {
    for (const bad of ['[]', '[{"alg":"ES256"}]', '"ES256"', '42', 'null', 'true', '{"alg":', 'not json', '']) {
      assert.throws(
        () => parseJws(`${b64url(bad)}.${p}.${s}`),
        (e: unknown) => e instanceof TokenFormatError && /header is not a JSON object/.test(e.message),
        `header ${bad}`,
      );
      assert.throws(
        () => parseJws(`${h}.${b64url(bad)}.${s}`),
        (e: unknown) => e instanceof TokenFormatError && /payload is not a JSON object/.test(e.message),
        `payload ${bad}`,
      );
    }
    assert.throws(() => parseJws(`${Buffer.from([0xff, 0xfe, 0x7b]).toString('base64url')}.${p}.${s}`), TokenFormatError, 'not UTF-8 JSON');
  });

  test('a header without a string alg is refused', () => {
    for (const header of [{}, { alg: 256 }, { alg: null }, { typ: 'JWT' }]) {
      assert.throws(
        () => parseJws(`${b64url(header)}.${p}.${s}`),
        (e: unknown) => e instanceof TokenFormatError && /alg/.test(e.message),
        JSON.stringify(header),
      );
    }
  });

  test('oversized tokens are refused before any decoding', () => {
    const big = signJws({ alg: 'ES256' }, { ...PAYLOAD, pad: 'x'.repeat(64 * 1024) }, keys.p256.privateKey);
    assert.throws(
      () => parseJws(big),
      (e: unknown) => e instanceof TokenFormatError && /too long/.test(e.message),
    );
    assert.throws(
      () => parseJws('.'.repeat(64 * 1024 + 1)),
      (e: unknown) => e instanceof TokenFormatError && /too long/.test(e.message),
    );
    // Just under the limit still parses.
    const pad = 'x'.repeat(40 * 1024);
    assert.equal(parseJws(signJws({ alg: 'ES256' }, { pad }, keys.p256.privateKey)).payload['pad'], pad);
  });
});

describe('libtrustKeyId', () => {
  const FORMAT = /^[A-Z2-7]{4}(?::[A-Z2-7]{4}){11}$/;

  /** libtrust's keyIDFromCryptoKey, written independently: RFC 4648 base32 of sha256(SPKI)[:30], groups of 4. */
  function reference(publicKey: KeyObject): string {
    const digest = createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest()
      .subarray(0, 30);
    const bits = [...digest].map((b) => b.toString(2).padStart(8, '0')).join('');
    const chars = bits
      .match(/.{5}/g)!
      .map((five) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[parseInt(five, 2)])
      .join('');
    return chars.match(/.{4}/g)!.join(':');
  }

  test('twelve groups of four base32 characters, as libtrust computes them', () => {
    for (const pair of Object.values(keys)) {
      const id = libtrustKeyId(pair.publicKey);
      assert.match(id, FORMAT);
      assert.equal(id.length, 59);
      assert.equal(id, reference(pair.publicKey));
    }
  });

  test('the same key gives the same ID from its private or public KeyObject', () => {
    for (const pair of Object.values(keys)) {
      assert.equal(libtrustKeyId(pair.privateKey), libtrustKeyId(pair.publicKey));
      assert.equal(libtrustKeyId(pair.publicKey), libtrustKeyId(pair.publicKey));
    }
  });

  test('different keys have different IDs', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10; i++) ids.add(libtrustKeyId(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
    for (const pair of Object.values(keys)) ids.add(libtrustKeyId(pair.publicKey));
    assert.equal(ids.size, 10 + Object.keys(keys).length);
  });
});
