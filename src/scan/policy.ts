/**
 * Sign after scan: whether a scan report allows signing one digest now.
 *
 * A policy is `{ maxAge?, maxSeverity?, ignore? }`:
 * - `maxAge` (seconds): the report's time may be at most this old (and not more than 5 minutes
 *   in the future); a report that records no time fails when `maxAge` is set;
 * - `maxSeverity`: the most findings allowed per severity, e.g. `{ "CRITICAL": 0, "HIGH": 3 }`;
 *   a severity not named is not limited;
 * - `ignore`: `[{ id, until, reason? }]` — findings with this ID (or alias; any case) do not
 *   count while `now` is before `until`: a date (`2026-12-31`) means through the end of that day
 *   UTC, a time (`2026-12-31T12:00:00Z`) that instant. Once it has passed the finding counts again.
 *
 * The report must name the digest being signed (src/scan/report.ts says where each format does);
 * one that names only other digests, or none, fails. Findings are counted once per (ID,
 * package, version). A failing check answers every reason and the findings that block; a
 * passing one answers the summary that is kept as evidence.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { parseScanReport, type ParseOptions } from './parse.js';
import { SEVERITIES, type Finding, type ScanFormat, type ScanReport, type Severity } from './report.js';
import { CodedError } from '../tuf/core/signet-error.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export const scanPolicySchema = z.strictObject({
  maxAge: z.number().int().positive().optional(),
  maxSeverity: z.partialRecord(z.enum(SEVERITIES), z.number().int().min(0)).optional(),
  ignore: z
    .array(
      z.strictObject({
        id: z.string().min(1).max(256),
        until: z.string().refine((s) => (DATE.test(s) || DATE_TIME.test(s)) && Number.isFinite(Date.parse(s)), {
          message: 'until must be a date (YYYY-MM-DD) or an RFC 3339 time',
        }),
        reason: z.string().max(1024).optional(),
      }),
    )
    .max(1000)
    .optional(),
});

export type ScanPolicy = z.infer<typeof scanPolicySchema>;

/** A policy is invalid (a configuration mistake, found when a signer is configured). */
export class ScanPolicyError extends CodedError<'SCAN_POLICY_INVALID'> {
  override name = 'ScanPolicyError';
}

export function parseScanPolicy(value: unknown): ScanPolicy {
  const parsed = scanPolicySchema.safeParse(value);
  if (!parsed.success) {
    throw new ScanPolicyError('SCAN_POLICY_INVALID', parsed.error.issues.map((i) => `${i.path.join('.') || 'policy'}: ${i.message}`).join('; '));
  }
  return parsed.data;
}

/** Why a report does not allow signing. */
export type ScanRefusalCode =
  /** The report names other digests than the one being signed. */
  | 'SCAN_WRONG_DIGEST'
  /** The report names no digest at all. */
  | 'SCAN_NO_DIGEST'
  /** The report is older than `maxAge`. */
  | 'SCAN_TOO_OLD'
  /** `maxAge` is set and the report records no time. */
  | 'SCAN_NO_TIME'
  /** The report's time is ahead of the clock by more than 5 minutes. */
  | 'SCAN_FROM_FUTURE'
  /** Findings exceed `maxSeverity`. */
  | 'SCAN_BLOCKED';

/** What is kept of a report: in the audit trail and the signed target's `custom` field. */
export interface ScanSummary {
  /** `sha256:` of the report bytes as given. */
  reportDigest: string;
  format: ScanFormat;
  scanner: string;
  scannerVersion: string | null;
  dbDate: string | null;
  createdAt: string | null;
  /** The digest the report was checked for. */
  digest: string;
  /** Findings that count, per severity (every severity present, 0 included). */
  counts: Record<Severity, number>;
  /** IDs of findings not counted because of an `ignore` entry still in force. */
  ignored: string[];
}

export type ScanVerdict =
  | { ok: true; summary: ScanSummary }
  | {
      ok: false;
      /** The first check that failed. */
      code: ScanRefusalCode;
      /** Every failed check, as sentences. */
      reasons: string[];
      /** Findings of each severity over its limit. */
      blocking: Finding[];
      summary: ScanSummary;
    };

export interface CheckScanOptions extends ParseOptions {
  /** The digest being signed: `sha256:HEX` or bare HEX. */
  digest: string;
  now: Date;
  policy: ScanPolicy;
}

/** Tolerance for a report time ahead of the clock. */
export const FUTURE_SKEW_MS = 5 * 60_000;

function normalDigest(digest: string): string {
  const d = digest.trim().toLowerCase();
  return d.startsWith('sha256:') ? d : `sha256:${d}`;
}

function ignoreEnd(until: string): number {
  return DATE.test(until) ? Date.parse(`${until}T00:00:00Z`) + 86_400_000 : Date.parse(until);
}

/**
 * Check report bytes for `digest` under `policy` at `now`. Bytes that are no scan report throw
 * a ScanReportError (SCAN_TOO_LARGE, SCAN_MALFORMED, SCAN_UNKNOWN_FORMAT); a policy that is not
 * one throws ScanPolicyError; every other outcome is the verdict.
 */
export function checkScan(bytes: Uint8Array | string, options: CheckScanOptions): ScanVerdict {
  const policy = parseScanPolicy(options.policy);
  const report = parseScanReport(bytes, options);
  const raw = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return judge(report, `sha256:${createHash('sha256').update(raw).digest('hex')}`, { ...options, policy });
}

/** The verdict on an already parsed report (`reportDigest` is the digest of its bytes). */
export function judge(report: ScanReport, reportDigest: string, options: { digest: string; now: Date; policy: ScanPolicy }): ScanVerdict {
  const { policy, now } = options;
  const digest = normalDigest(options.digest);
  const nowMs = now.getTime();
  const reasons: { code: ScanRefusalCode; text: string }[] = [];

  if (report.artifact.digests.length === 0) reasons.push({ code: 'SCAN_NO_DIGEST', text: 'the report names no digest of the artifact it scanned' });
  else if (!report.artifact.digests.includes(digest)) {
    reasons.push({ code: 'SCAN_WRONG_DIGEST', text: `the report is for ${report.artifact.digests.join(', ')}, not ${digest}` });
  }

  if (report.createdAt) {
    const at = Date.parse(report.createdAt);
    if (at > nowMs + FUTURE_SKEW_MS) reasons.push({ code: 'SCAN_FROM_FUTURE', text: `the report is dated ${report.createdAt}, in the future` });
    else if (policy.maxAge !== undefined && nowMs - at > policy.maxAge * 1000) {
      reasons.push({ code: 'SCAN_TOO_OLD', text: `the report is from ${report.createdAt}, older than ${policy.maxAge} s` });
    }
  } else if (policy.maxAge !== undefined) {
    reasons.push({ code: 'SCAN_NO_TIME', text: 'the report records no time, so its age cannot be checked' });
  }

  const ignores = (policy.ignore ?? []).filter((i) => nowMs < ignoreEnd(i.until)).map((i) => i.id.toUpperCase());
  const isIgnored = (f: Finding) => ignores.includes(f.id.toUpperCase()) || f.aliases.some((a) => ignores.includes(a.toUpperCase()));
  const counted = report.findings.filter((f) => !isIgnored(f));
  const ignored = [...new Set(report.findings.filter(isIgnored).map((f) => f.id))];
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of counted) counts[f.severity]++;

  const blocking: Finding[] = [];
  const over: string[] = [];
  for (const severity of SEVERITIES) {
    const limit = policy.maxSeverity?.[severity];
    if (limit === undefined || counts[severity] <= limit) continue;
    over.push(`${counts[severity]} ${severity} (at most ${limit})`);
    blocking.push(...counted.filter((f) => f.severity === severity));
  }
  if (over.length > 0) reasons.push({ code: 'SCAN_BLOCKED', text: `the report has ${over.join(', ')}` });

  const summary: ScanSummary = {
    reportDigest,
    format: report.format,
    scanner: report.scanner.name,
    scannerVersion: report.scanner.version,
    dbDate: report.dbDate,
    createdAt: report.createdAt,
    digest,
    counts,
    ignored,
  };
  if (reasons.length === 0) return { ok: true, summary };
  return { ok: false, code: reasons[0]!.code, reasons: reasons.map((r) => r.text), blocking, summary };
}

/** A failed verdict as an error the signing route can throw (422, with the reasons and blocking findings). */
export class ScanRefusedError extends CodedError<ScanRefusalCode> {
  override name = 'ScanRefusedError';
  readonly status = 422;
  constructor(readonly verdict: Extract<ScanVerdict, { ok: false }>) {
    super(verdict.code, verdict.reasons.join('; '));
  }

  /** The JSON detail for the client: reasons, and the blocking findings (at most `limit`). */
  detail(limit = 20): { reasons: string[]; blocking: Pick<Finding, 'id' | 'severity' | 'package' | 'version'>[]; moreBlocking: number } {
    const b = this.verdict.blocking;
    return {
      reasons: this.verdict.reasons,
      blocking: b.slice(0, limit).map((f) => ({ id: f.id, severity: f.severity, package: f.package, version: f.version })),
      moreBlocking: Math.max(0, b.length - limit),
    };
  }
}
