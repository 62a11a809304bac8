/**
 * A client-side toolkit for tests: keys of every type, self-signed X.509 root certificates built
 * here (so validity dates, signature hashes and CA flags can be anything), Notary-style signed
 * metadata, and multipart update bodies as the Go client writes them.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { selfSignedCertificate, type CertOptions } from '../../src/auth/self-signed-certificate.js';
export { selfSignedCertificate, type CertOptions };
import { canonicalJson } from '../../src/tuf/core/canonical-json.js';
import { tufKeyId } from '../../src/tuf/core/keys.js';

export type KitKeyType = 'ecdsa' | 'ecdsa-x509' | 'rsa' | 'rsa-x509' | 'ed25519';

export interface TestKey {
  keytype: KitKeyType | string;
  /** `keyval.public` as it appears in metadata. */
  publicB64: string;
  keyId: string;
  privateKey: KeyObject | null;
}

// ---- keys ----

function keyFrom(keytype: string, publicB64: string, privateKey: KeyObject | null): TestKey {
  return { keytype, publicB64, keyId: tufKeyId(keytype, publicB64), privateKey };
}

export function ecdsaKey(): TestKey {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return keyFrom('ecdsa', publicKey.export({ type: 'spki', format: 'der' }).toString('base64'), privateKey);
}

export function ed25519Key(): TestKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return keyFrom('ed25519', spki.subarray(spki.length - 32).toString('base64'), privateKey);
}

export function rsaKey(bits = 2048): TestKey {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return keyFrom('rsa', publicKey.export({ type: 'spki', format: 'der' }).toString('base64'), privateKey);
}

/** An x509 key (`ecdsa-x509`, or `rsa-x509` with `rsa: true`) as notary uses for root keys. */
export function certKey(opts: CertOptions & { rsa?: boolean; bits?: number }): TestKey {
  const { publicKey, privateKey } = opts.rsa
    ? generateKeyPairSync('rsa', { modulusLength: opts.bits ?? 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = selfSignedCertificate(privateKey, publicKey, opts);
  return keyFrom(opts.rsa ? 'rsa-x509' : 'ecdsa-x509', Buffer.from(pem).toString('base64'), privateKey);
}

/** A key the server handed out (`GET …/timestamp.key`): public only. */
export function serverKey(json: { keytype: string; keyval: { public: string } }): TestKey {
  return keyFrom(json.keytype, json.keyval.public, null);
}

export function keyJson(k: TestKey) {
  return { keytype: k.keytype, keyval: { private: null, public: k.publicB64 } };
}

// ---- signing ----

export function signatureFor(key: TestKey, message: Buffer): { keyid: string; method: string; sig: string } {
  if (!key.privateKey) throw new Error(`no private key for ${key.keyId}`);
  const type = key.privateKey.asymmetricKeyType;
  let method: string;
  let sig: Buffer;
  if (type === 'ed25519') {
    method = 'eddsa';
    sig = sign(null, message, key.privateKey);
  } else if (type === 'rsa') {
    method = 'rsapss';
    sig = sign('sha256', message, { key: key.privateKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 });
  } else {
    method = 'ecdsa';
    sig = sign('sha256', message, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  }
  return { keyid: key.keyId, method, sig: sig.toString('base64') };
}

/** Notary's envelope: `{"signed":<canonical>,"signatures":[…]}`, signed by `keys`. */
export function signFile(signed: object, keys: readonly TestKey[], extraSignatures: object[] = []): Buffer {
  const message = canonicalJson(signed);
  const signatures = [...keys.map((k) => signatureFor(k, message)), ...extraSignatures];
  return Buffer.concat([Buffer.from('{"signed":'), message, Buffer.from(`,"signatures":${JSON.stringify(signatures)}}`)]);
}

// ---- metadata documents ----

export const inDays = (days: number) => new Date(Date.now() + days * 86400_000).toISOString();

export interface RootSpec {
  version?: number;
  expires?: string;
  root: TestKey[];
  rootThreshold?: number;
  targets: TestKey[];
  targetsThreshold?: number;
  snapshot: TestKey[];
  snapshotThreshold?: number;
  timestamp: TestKey[];
  timestampThreshold?: number;
  /** Keys listed in `keys` without a role (e.g. old root certificates). */
  extraKeys?: TestKey[];
}

export function rootDoc(spec: RootSpec): Record<string, unknown> {
  const all = [...spec.root, ...spec.targets, ...spec.snapshot, ...spec.timestamp, ...(spec.extraKeys ?? [])];
  const role = (keys: TestKey[], threshold?: number) => ({ keyids: keys.map((k) => k.keyId), threshold: threshold ?? 1 });
  return {
    _type: 'Root',
    consistent_snapshot: false,
    expires: spec.expires ?? inDays(3650),
    keys: Object.fromEntries(all.map((k) => [k.keyId, keyJson(k)])),
    roles: {
      root: role(spec.root, spec.rootThreshold),
      snapshot: role(spec.snapshot, spec.snapshotThreshold),
      targets: role(spec.targets, spec.targetsThreshold),
      timestamp: role(spec.timestamp, spec.timestampThreshold),
    },
    version: spec.version ?? 1,
  };
}

export interface DelegationSpec {
  name: string;
  keys: TestKey[];
  threshold?: number;
  paths?: string[];
}

export function targetFile(content: string | Buffer) {
  const bytes = Buffer.from(content);
  return {
    hashes: {
      sha256: createHash('sha256').update(bytes).digest('base64'),
      sha512: createHash('sha512').update(bytes).digest('base64'),
    },
    length: bytes.length,
  };
}

export function targetsDoc(opts: {
  version?: number;
  expires?: string;
  targets?: Record<string, unknown>;
  delegations?: DelegationSpec[];
}): Record<string, unknown> {
  const delegations = opts.delegations ?? [];
  const keys = delegations.flatMap((d) => d.keys);
  return {
    _type: 'Targets',
    delegations: {
      keys: Object.fromEntries(keys.map((k) => [k.keyId, keyJson(k)])),
      roles: delegations.map((d) => ({
        keyids: d.keys.map((k) => k.keyId),
        name: d.name,
        ...(d.paths ? { paths: d.paths } : { paths: [''] }),
        threshold: d.threshold ?? 1,
      })),
    },
    expires: opts.expires ?? inDays(1095),
    targets: opts.targets ?? {},
    version: opts.version ?? 1,
  };
}

export function metaOf(bytes: Buffer) {
  return {
    hashes: {
      sha256: createHash('sha256').update(bytes).digest('base64'),
      sha512: createHash('sha512').update(bytes).digest('base64'),
    },
    length: bytes.length,
  };
}

export function snapshotDoc(opts: { version?: number; expires?: string; files: Record<string, Buffer> }): Record<string, unknown> {
  return {
    _type: 'Snapshot',
    expires: opts.expires ?? inDays(1095),
    meta: Object.fromEntries(Object.entries(opts.files).map(([role, bytes]) => [role, metaOf(bytes)])),
    version: opts.version ?? 1,
  };
}

// ---- multipart, as the Go client writes it ----

export function multipartBody(parts: Record<string, Buffer | string>, boundary = randomBytes(16).toString('hex')) {
  const chunks: Buffer[] = [];
  for (const [role, data] of Object.entries(parts)) {
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${role}"\r\n` + 'Content-Type: application/octet-stream\r\n\r\n'),
      Buffer.from(data),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
