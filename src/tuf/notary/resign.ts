/**
 * The files the server signs itself, in one place: the next timestamp over a snapshot, and the
 * re-sign plan for a repository whose server-signed files have expired (notary's lazy
 * regeneration) or are about to (the expiry watch). Pure: the time, the stored state and the
 * keys come in; the caller stores what comes out.
 */
import { buildSnapshot, buildTimestamp, signDocument, type ServerSigningKey } from './generate.js';
import type { RootSigned, SignedFile } from './metadata.js';

export interface SignedNewFile {
  role: 'snapshot' | 'timestamp';
  version: number;
  bytes: Buffer;
}

/** The server keys the root lists for `role`, if they meet its threshold. */
export function heldKeysFor(role: 'snapshot' | 'timestamp', root: RootSigned, serverKeys: readonly ServerSigningKey[]): ServerSigningKey[] | null {
  const entry = root.roles[role];
  if (!entry) return null;
  const listed = new Set(entry.keyids);
  const held = serverKeys.filter((k) => k.role === role && listed.has(k.keyId));
  return held.length >= entry.threshold ? held : null;
}

/** The timestamp after `latestVersion`, over `snapshot`'s bytes, expiring at `expiresMs`. */
export function nextTimestamp(snapshot: Buffer, latestVersion: number, keys: readonly ServerSigningKey[], expiresMs: number): SignedNewFile {
  const version = latestVersion + 1;
  return { role: 'timestamp', version, bytes: signDocument(buildTimestamp(snapshot, version, expiresMs), keys) };
}

export interface ResignInput {
  root: RootSigned;
  timestamp: SignedFile;
  /** The snapshot the timestamp lists, with its stored bytes. */
  snapshot: { file: SignedFile; bytes: Buffer };
  /** Highest stored version of each role over the repository's history. */
  latestVersions: ReadonlyMap<string, number>;
  serverKeys: readonly ServerSigningKey[];
  nowMs: number;
  /** Files expiring within this many ms count as expired (the expiry watch re-signs early). */
  horizonMs: number;
  expiries: { snapshotMs: number; timestampMs: number };
}

/**
 * What to store so that the repository's server-signed files are fresh again: a new snapshot
 * (same contents, when it expires and the server holds its key) and a new timestamp over the
 * snapshot in force. Empty when nothing is due, or when the server lacks the keys (the stored
 * files are then served as they are, and clients report the expiry).
 */
export function planResign(input: ResignInput): SignedNewFile[] {
  const due = input.nowMs + input.horizonMs;
  const snapshotDue = input.snapshot.file.isExpired(due);
  if (!snapshotDue && !input.timestamp.isExpired(due)) return [];
  const files: SignedNewFile[] = [];
  let snapshotBytes = input.snapshot.bytes;
  const snapshotKeys = snapshotDue ? heldKeysFor('snapshot', input.root, input.serverKeys) : null;
  if (snapshotKeys) {
    const version = (input.latestVersions.get('snapshot') ?? 0) + 1;
    const meta = (input.snapshot.file.signed as { meta?: Record<string, unknown> }).meta ?? {};
    snapshotBytes = signDocument(buildSnapshot(meta, new Map(), version, input.nowMs + input.expiries.snapshotMs), snapshotKeys);
    files.push({ role: 'snapshot', version, bytes: snapshotBytes });
  }
  if (files.length === 0 && !input.timestamp.isExpired(due)) return [];
  const timestampKeys = heldKeysFor('timestamp', input.root, input.serverKeys);
  if (!timestampKeys) return [];
  files.push(nextTimestamp(snapshotBytes, input.latestVersions.get('timestamp') ?? 0, timestampKeys, input.nowMs + input.expiries.timestampMs));
  return files;
}
