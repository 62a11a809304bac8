/**
 * A minimal Notary client for tests: creates repositories with the toolkit's keys and publishes
 * updates over real HTTP, as the notary CLI would (root x509 key, local targets key, snapshot
 * key local or held by the server, timestamp key always the server's).
 */
import request from 'supertest';
import { certKey, ecdsaKey, multipartBody, rootDoc, serverKey, signFile, snapshotDoc, targetsDoc, type RootSpec, type TestKey } from './tuf-kit.js';

export interface PublishResponse {
  status: number;
  body: { errors?: { code: string; message: string; detail?: unknown }[] };
  text: string;
}

export async function postUpdate(url: string, gun: string, parts: Record<string, Buffer | string>): Promise<PublishResponse> {
  const { body, contentType } = multipartBody(parts);
  const res = await request(url).post(`/v2/${gun}/_trust/tuf/`).set('Content-Type', contentType).send(body);
  return { status: res.status, body: res.body as PublishResponse['body'], text: res.text };
}

export async function fetchServerKey(url: string, gun: string, role: 'timestamp' | 'snapshot', method: 'get' | 'post' = 'get'): Promise<TestKey> {
  const res = await request(url)[method](`/v2/${gun}/_trust/tuf/${role}.key`);
  if (res.status !== 200) throw new Error(`${role}.key: ${res.status} ${res.text}`);
  return serverKey(JSON.parse(res.text) as { keytype: string; keyval: { public: string } });
}

export interface TestRepository {
  gun: string;
  rootKey: TestKey;
  targetsKey: TestKey;
  snapshotKey: TestKey;
  timestampKey: TestKey;
  rootSpec: RootSpec;
  root: Buffer;
  targets: Buffer;
  /** Bytes of the snapshot uploaded last (client-held snapshot key only). */
  snapshot?: Buffer;
}

/**
 * Initialise and publish a repository (root, targets v1 and, unless the server holds the
 * snapshot key, a snapshot). Throws when the server refuses.
 */
export async function createRepository(
  url: string,
  gun: string,
  opts: { serverSnapshot?: boolean; targets?: Record<string, unknown> } = {},
): Promise<TestRepository> {
  const timestampKey = await fetchServerKey(url, gun, 'timestamp');
  const snapshotKey = opts.serverSnapshot ? await fetchServerKey(url, gun, 'snapshot') : ecdsaKey();
  const rootKey = certKey({ commonName: gun });
  const targetsKey = ecdsaKey();
  const rootSpec: RootSpec = { root: [rootKey], targets: [targetsKey], snapshot: [snapshotKey], timestamp: [timestampKey] };
  const root = signFile(rootDoc(rootSpec), [rootKey]);
  const targets = signFile(targetsDoc({ targets: opts.targets ?? {} }), [targetsKey]);
  const parts: Record<string, Buffer> = { root, targets };
  let snapshot: Buffer | undefined;
  if (!opts.serverSnapshot) {
    snapshot = signFile(snapshotDoc({ files: { root, targets } }), [snapshotKey]);
    parts['snapshot'] = snapshot;
  }
  const res = await postUpdate(url, gun, parts);
  if (res.status !== 200) throw new Error(`creating ${gun}: ${res.status} ${res.text}`);
  return { gun, rootKey, targetsKey, snapshotKey, timestampKey, rootSpec, root, targets, ...(snapshot ? { snapshot } : {}) };
}
