/**
 * Repository content for the benchmark:
 * - the read repository, published with the real `notary` CLI (init, add, publish), so each
 *   server holds the same shape of content made by the same client;
 * - writer repositories made with the test TUF kit (server-held snapshot and timestamp keys), and
 *   pre-signed targets updates for them, version k+1 each. The kit is server-agnostic: for
 *   notary-server the repositories are made with its own timestamp/snapshot keys.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { certKey, ecdsaKey, multipartBody, rootDoc, serverKey, sha256Hex, signFile, targetFile, targetsDoc, type TestKey } from '../test/support/tuf-kit.js';
import type { HttpClient } from './http.js';
import { run } from './proc.js';

export const READ_GUN = 'bench/app';
export const READ_TARGETS = 20;

const PASSPHRASES = {
  NOTARY_ROOT_PASSPHRASE: 'bench-passphrase',
  NOTARY_TARGETS_PASSPHRASE: 'bench-passphrase',
  NOTARY_SNAPSHOT_PASSPHRASE: 'bench-passphrase',
  NOTARY_DELEGATION_PASSPHRASE: 'bench-passphrase',
};

/** `notary init -p`, `add` READ_TARGETS targets, `publish`, with a fresh trust dir. */
export function publishWithNotaryCli(url: string, caCert: string, workDir: string, gun = READ_GUN, count = READ_TARGETS): void {
  const trustDir = path.join(workDir, 'trust');
  const base = ['-s', url, '-d', trustDir, ...(url.startsWith('https:') ? ['--tlscacert', caCert] : [])];
  const env = { ...process.env, ...PASSPHRASES };
  run('notary', [...base, 'init', gun, '-p'], { env, timeoutMs: 60_000 });
  for (let i = 1; i <= count; i++) {
    const file = path.join(workDir, `artifact-${i}`);
    writeFileSync(file, `bench artifact ${i}\n`.repeat(i));
    run('notary', [...base, 'add', gun, `release-${i}`, file], { env, timeoutMs: 60_000 });
  }
  run('notary', [...base, 'publish', gun], { env, timeoutMs: 60_000 });
}

export interface ReadPaths {
  timestamp: string;
  root: string;
  targets: string;
  byChecksum: string;
  /** The bytes each path serves on the server they were read from. */
  files: Record<string, Buffer>;
}

const tufPath = (gun: string, file: string) => `/v2/${gun}/_trust/tuf/${file}`;

/** The read paths of a repository, with the bytes the server serves for them. */
export async function readPaths(client: HttpClient, gun = READ_GUN): Promise<ReadPaths> {
  const timestamp = tufPath(gun, 'timestamp.json');
  const root = tufPath(gun, 'root.json');
  const targets = tufPath(gun, 'targets.json');
  const files: Record<string, Buffer> = {};
  for (const p of [timestamp, root, targets]) files[p] = await client.get(p);
  const byChecksum = tufPath(gun, `targets.${sha256Hex(files[targets]!)}.json`);
  files[byChecksum] = await client.get(byChecksum);
  if (!files[byChecksum]!.equals(files[targets]!)) throw new Error(`${byChecksum} differs from targets.json`);
  return { timestamp, root, targets, byChecksum, files };
}

// ---- writer repositories ----

export interface Update {
  body: Buffer;
  contentType: string;
}

const STATIC_TARGETS = Object.fromEntries([1, 2, 3].map((i) => [`base-${i}`, targetFile(`base artifact ${i}`)]));

export class WriterRepo {
  private readonly queue: Update[] = [];
  private nextVersion = 2;
  /** Updates that had to be signed during a run because the pre-signed ones ran out. */
  signedDuringRun = 0;
  sent = 0;

  constructor(
    readonly gun: string,
    readonly targetsKey: TestKey,
  ) {}

  readonly timestampPath = () => tufPath(this.gun, 'timestamp.json');
  readonly updatePath = () => `/v2/${this.gun}/_trust/tuf/`;

  private sign(): Update {
    const version = this.nextVersion++;
    const targets = signFile(targetsDoc({ version, targets: { ...STATIC_TARGETS, latest: targetFile(`build ${this.gun} ${version}`) } }), [this.targetsKey]);
    return multipartBody({ targets });
  }

  presign(count: number): void {
    for (let i = 0; i < count; i++) this.queue.push(this.sign());
  }

  get presigned(): number {
    return this.queue.length;
  }

  /** The next targets update, version k+1 of the last one handed out. */
  next(): Update {
    this.sent++;
    const update = this.queue.shift();
    if (update) return update;
    this.signedDuringRun++;
    return this.sign();
  }
}

async function serverKeyOf(client: HttpClient, gun: string, role: 'timestamp' | 'snapshot'): Promise<TestKey> {
  const body = await client.get(tufPath(gun, `${role}.key`));
  return serverKey(JSON.parse(body.toString()) as { keytype: string; keyval: { public: string } });
}

/** A repository whose snapshot and timestamp keys the server holds (as createRepository does). */
export async function createWriterRepo(client: HttpClient, gun: string, targets: Record<string, unknown> = STATIC_TARGETS): Promise<WriterRepo> {
  const timestampKey = await serverKeyOf(client, gun, 'timestamp');
  const snapshotKey = await serverKeyOf(client, gun, 'snapshot');
  const rootKey = certKey({ commonName: gun });
  const targetsKey = ecdsaKey();
  const root = signFile(rootDoc({ root: [rootKey], targets: [targetsKey], snapshot: [snapshotKey], timestamp: [timestampKey] }), [rootKey]);
  const targetsFile = signFile(targetsDoc({ targets }), [targetsKey]);
  const { body, contentType } = multipartBody({ root, targets: targetsFile });
  const res = await client.request('POST', `/v2/${gun}/_trust/tuf/`, { body, headers: { 'Content-Type': contentType } });
  if (res.status !== 200) throw new Error(`creating ${gun}: ${res.status} ${res.body.toString().slice(0, 500)}`);
  return new WriterRepo(gun, targetsKey);
}

export async function createWriterRepos(client: HttpClient, prefix: string, count: number): Promise<WriterRepo[]> {
  const repos: WriterRepo[] = [];
  for (let i = 0; i < count; i++) repos.push(await createWriterRepo(client, `${prefix}-${i}`));
  return repos;
}

/** Send one update outside any load run; throws when the server refuses it. */
export async function publishOne(client: HttpClient, repo: WriterRepo): Promise<void> {
  const { body, contentType } = repo.next();
  const res = await client.request('POST', repo.updatePath(), { body, headers: { 'Content-Type': contentType } });
  if (res.status !== 200) throw new Error(`update of ${repo.gun}: ${res.status} ${res.body.toString().slice(0, 500)}`);
}

/** A targets file with `count` entries, signed; for the large-upload workload. */
export function bigTargetsUpdate(repo: WriterRepo, count: number, version: number): Update {
  const targets: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) targets[`artifacts/file-${i}`] = targetFile(`artifact ${i}`);
  const file = signFile(targetsDoc({ version, targets }), [repo.targetsKey]);
  return multipartBody({ targets: file });
}
