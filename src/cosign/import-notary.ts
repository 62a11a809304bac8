/**
 * A way off Docker Content Trust: give every digest a Notary v1 repository signs a Cosign
 * signature too, without rebuilding or re-pushing any image.
 *
 * The caller verifies the Notary repository (the client workflow, with its trust pinning) and
 * passes its signed tags here; each signed digest is signed once with the cosign key, however many
 * tags name it. The run is idempotent and so resumable: a digest that already carries a signature
 * by this key (in each format being written) is skipped, so a second run signs nothing and a run
 * that was interrupted picks up where it stopped. Each digest's signature is one manifest write,
 * so an interruption never leaves half a signature that a later run would take for a whole one.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { RegistryError, type RegistryClient, type RepositoryRef } from '../registry/index.js';
import { CosignError } from './errors.js';
import { signImageDigest, type SignFormat } from './sign.js';
import { verifyCosignSignatures, type SignatureFormat } from './verify.js';

/** One signed tag of the Notary repository: its digest and the Notary signers that signed it. */
export interface NotarySignedTag {
  tag: string;
  digest: string;
  signers: string[];
}

export interface ImportOptions {
  format?: SignFormat;
  /** Only digests this Notary signer signed (a delegation name, or `Repo Admin` for the repository key). */
  signer?: string;
  dryRun?: boolean;
  /** Digests worked on at once; default 8. */
  concurrency?: number;
  /** Heard after each digest, with how many are done and how many there are. */
  onProgress?: (done: number, total: number) => void;
  now?: Date;
}

export interface ImportEntry {
  digest: string;
  tags: string[];
}

export interface ImportReport {
  repository: string;
  format: SignFormat;
  dryRun: boolean;
  /** Digests signed in this run (with --dry-run: those that would be). */
  signed: (ImportEntry & { formats: SignatureFormat[] })[];
  skipped: (ImportEntry & { reason: string })[];
  failed: (ImportEntry & { reason: string })[];
  counts: { tags: number; digests: number; signed: number; skipped: number; failed: number };
}

const DEFAULT_CONCURRENCY = 8;
const MAX_CONCURRENCY = 64;
const RETRY_DELAY_MS = 500;

function formatsOf(format: SignFormat): SignatureFormat[] {
  return format === 'both' ? ['tag', 'bundle'] : [format];
}

/** The formats in which `digest` lacks a signature by `publicKey`. */
async function missingFormats(client: RegistryClient, repo: RepositoryRef, digest: string, publicKey: KeyObject, wanted: SignatureFormat[]) {
  const keys = new Map([['key', publicKey]]);
  const missing: SignatureFormat[] = [];
  for (const format of wanted) {
    const found = await verifyCosignSignatures(client, repo, digest, { keys, formats: [format] });
    if (found.signers.length === 0) missing.push(format);
  }
  return missing;
}

/** Sign, with `privateKey`, each digest of `tags` that has no cosign signature by it yet. */
export async function importNotarySignatures(
  client: RegistryClient,
  repo: RepositoryRef,
  tags: readonly NotarySignedTag[],
  privateKey: KeyObject,
  options: ImportOptions = {},
): Promise<ImportReport> {
  const format = options.format ?? 'tag';
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY)
    throw new CosignError('BAD_INPUT', `concurrency must be from 1 to ${MAX_CONCURRENCY}, got ${concurrency}`);
  const publicKey = createPublicKey(privateKey);
  const report: ImportReport = {
    repository: `${repo.registry}/${repo.repository}`,
    format,
    dryRun: options.dryRun === true,
    signed: [],
    skipped: [],
    failed: [],
    counts: { tags: tags.length, digests: 0, signed: 0, skipped: 0, failed: 0 },
  };

  // One piece of work per digest, in the order its first tag comes.
  const byDigest = new Map<string, { tags: string[]; signers: Set<string> }>();
  for (const t of tags) {
    const entry = byDigest.get(t.digest) ?? { tags: [], signers: new Set<string>() };
    entry.tags.push(t.tag);
    for (const s of t.signers) entry.signers.add(s);
    byDigest.set(t.digest, entry);
  }
  const work = [...byDigest.entries()];
  report.counts.digests = work.length;

  /** A registry that did not answer in time, or failed the request (5xx), is asked again once. */
  const transient = (error: unknown) =>
    error instanceof RegistryError &&
    (error.code === 'UNREACHABLE' || error.code === 'TIMEOUT' || (error.code === 'BAD_RESPONSE' && /\b5\d\d\b/.test(error.message)));
  const withRetry = async <T>(step: () => Promise<T>): Promise<T> => {
    try {
      return await step();
    } catch (error) {
      if (!transient(error)) throw error;
      await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
      return step();
    }
  };

  const one = async ([digest, { tags: names, signers }]: (typeof work)[number]): Promise<void> => {
    const entry = { digest, tags: names };
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) return void report.skipped.push({ ...entry, reason: 'the Notary target has no sha256 hash' });
    if (options.signer !== undefined && !signers.has(options.signer))
      return void report.skipped.push({ ...entry, reason: `not signed by ${options.signer} (signed by ${[...signers].join(', ') || 'no signer'})` });
    try {
      try {
        await withRetry(() => client.resolveManifest(client.at(repo, digest)));
      } catch (error) {
        if (error instanceof RegistryError && error.code === 'NOT_FOUND')
          return void report.skipped.push({ ...entry, reason: 'the registry has no image with this digest' });
        throw error;
      }
      const missing = await withRetry(() => missingFormats(client, repo, digest, publicKey, formatsOf(format)));
      if (missing.length === 0) return void report.skipped.push({ ...entry, reason: 'already signed with this key' });
      if (!report.dryRun) {
        const sign = (formats: SignatureFormat[]) =>
          signImageDigest(client, repo, digest, privateKey, {
            format: formats.length === 2 ? 'both' : formats[0]!,
            ...(options.now ? { now: options.now } : {}),
          });
        try {
          await sign(missing);
        } catch (error) {
          if (!transient(error)) throw error;
          // The write may have reached the registry before the answer was lost: look again
          // first, so that a retry never adds a second signature by this key.
          await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
          const still = await missingFormats(client, repo, digest, publicKey, missing);
          if (still.length > 0) await sign(still);
        }
      }
      report.signed.push({ ...entry, formats: missing });
    } catch (error) {
      report.failed.push({ ...entry, reason: error instanceof Error ? error.message : String(error) });
    }
  };

  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < work.length) {
      const item = work[next++]!;
      await one(item);
      options.onProgress?.(++done, work.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, work.length) }, worker));

  const order = new Map(work.map(([digest], i) => [digest, i]));
  const byOrder = (a: ImportEntry, b: ImportEntry) => order.get(a.digest)! - order.get(b.digest)!;
  report.signed.sort(byOrder);
  report.skipped.sort(byOrder);
  report.failed.sort(byOrder);
  report.counts.signed = report.signed.length;
  report.counts.skipped = report.skipped.length;
  report.counts.failed = report.failed.length;
  return report;
}
