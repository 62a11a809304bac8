/**
 * One summary of a vulnerability scan report, whichever scanner wrote it (Trivy JSON, Grype
 * JSON, SARIF 2.1): who scanned, with which vulnerability database, when, which artifact, and
 * what was found. Pure: parsing and judging reports does no I/O.
 */
import { CodedError } from '../tuf/core/signet-error.js';

export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'NEGLIGIBLE', 'UNKNOWN'] as const;
export type Severity = (typeof SEVERITIES)[number];

export type ScanFormat = 'trivy' | 'grype' | 'sarif';

export interface Finding {
  /** The vulnerability's ID as the scanner reports it (CVE-…, GHSA-…, a distribution's ID). */
  id: string;
  /** Other IDs of the same vulnerability the report gives (Grype's related vulnerabilities, Trivy's vendor IDs). */
  aliases: string[];
  severity: Severity;
  /** The affected package, where the report says. */
  package: string | null;
  /** Its installed version, where the report says. */
  version: string | null;
  /** A version that fixes it, where the report says. */
  fixedVersion: string | null;
}

export interface ScanReport {
  format: ScanFormat;
  scanner: { name: string; version: string | null };
  /** When the vulnerability database was built (ISO 8601), where the report records it. */
  dbDate: string | null;
  /** When the scan ran (ISO 8601), where the report records it. */
  createdAt: string | null;
  /** The artifact: its name as given to the scanner, and every `sha256:` digest the report names it by. */
  artifact: { name: string | null; digests: string[] };
  /** One per (ID, package, version): a package found in several layers or paths counts once. */
  findings: Finding[];
}

/** Why report bytes cannot be read as a scan report. */
export type ScanReportErrorCode =
  /** Larger than the limit (413). */
  | 'SCAN_TOO_LARGE'
  /** Not JSON, or JSON that is not the format it claims (400). */
  | 'SCAN_MALFORMED'
  /** JSON in none of the accepted formats (400). */
  | 'SCAN_UNKNOWN_FORMAT';

export const SCAN_REPORT_ERROR_STATUS: Record<ScanReportErrorCode, number> = { SCAN_TOO_LARGE: 413, SCAN_MALFORMED: 400, SCAN_UNKNOWN_FORMAT: 400 };

export class ScanReportError extends CodedError<ScanReportErrorCode> {
  override name = 'ScanReportError';
  get status(): number {
    return SCAN_REPORT_ERROR_STATUS[this.code];
  }
}

/** A scanner's severity word as one of SEVERITIES (any case); anything else is UNKNOWN. */
export function normalSeverity(text: unknown): Severity {
  if (typeof text !== 'string') return 'UNKNOWN';
  const upper = text.trim().toUpperCase();
  return (SEVERITIES as readonly string[]).includes(upper) ? (upper as Severity) : 'UNKNOWN';
}

/** A CVSS score as a severity, with the bands of CVSS v3 (and GitHub code scanning's `security-severity`). */
export function severityOfScore(score: number): Severity {
  if (!Number.isFinite(score) || score <= 0) return 'UNKNOWN';
  if (score >= 9) return 'CRITICAL';
  if (score >= 7) return 'HIGH';
  if (score >= 4) return 'MEDIUM';
  return 'LOW';
}

const DIGEST = /(?:^|@)(sha256:[0-9a-f]{64})$/i;

/** The `sha256:` digest in `repo@sha256:…` or `sha256:…`, lower case; null when there is none. */
export function digestIn(text: unknown): string | null {
  if (typeof text !== 'string') return null;
  const m = DIGEST.exec(text.trim());
  return m ? m[1]!.toLowerCase() : null;
}

/** Digests of these references, each once. */
export function digestsOf(values: readonly unknown[]): string[] {
  return [...new Set(values.map(digestIn).filter((d): d is string => d !== null))];
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 time as ISO 8601 in UTC; null for absent, malformed or zero (Go's 0001-01-01) times. */
export function isoTime(text: unknown): string | null {
  if (typeof text !== 'string' || !RFC3339.test(text.trim())) return null;
  const ms = Date.parse(text.trim().replace(' ', 'T'));
  if (!Number.isFinite(ms) || ms < 0) return null;
  return new Date(ms).toISOString();
}

/** Findings with one entry per (ID, package, version), the first one seen kept. */
export function dedupe(findings: Finding[]): Finding[] {
  const seen = new Map<string, Finding>();
  for (const f of findings) {
    const key = JSON.stringify([f.id, f.package, f.version]);
    const had = seen.get(key);
    if (!had) seen.set(key, f);
    else had.aliases = [...new Set([...had.aliases, ...f.aliases])];
  }
  return [...seen.values()];
}
