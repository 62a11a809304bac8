/**
 * Read report bytes as a scan report: at most `maxBytes` (default 8 MiB), UTF-8 JSON, in one of
 * the accepted formats — told by its shape, or named by the caller:
 * SARIF has `version` and `runs`; Grype has `matches` and `descriptor`; Trivy has
 * `SchemaVersion` and `Results` or `ArtifactName`.
 */
import type { z } from 'zod';
import { fromGrype, grypeSchema, isGrype } from './grype.js';
import { ScanReportError, type ScanFormat, type ScanReport } from './report.js';
import { fromSarif, isSarif, sarifSchema } from './sarif.js';
import { fromTrivy, isTrivy, trivySchema } from './trivy.js';

export const DEFAULT_MAX_REPORT_BYTES = 8 * 1024 * 1024;

export interface ParseOptions {
  maxBytes?: number;
  /** The format the caller says it is; told from the shape otherwise. */
  format?: ScanFormat;
}

function parseAs<S extends z.ZodType, R>(schema: S, from: (v: z.infer<S>) => R, json: unknown, what: string): R {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first?.path.length ? ` at ${first.path.join('.')}` : '';
    throw new ScanReportError('SCAN_MALFORMED', `not a valid ${what} report${where}: ${first?.message ?? 'invalid'}`);
  }
  return from(parsed.data);
}

export function parseScanReport(bytes: Uint8Array | string, options: ParseOptions = {}): ScanReport {
  const max = options.maxBytes ?? DEFAULT_MAX_REPORT_BYTES;
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (size > max) throw new ScanReportError('SCAN_TOO_LARGE', `the scan report is ${size} bytes, more than the ${max} accepted`);
  let json: unknown;
  try {
    const text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    throw new ScanReportError('SCAN_MALFORMED', 'the scan report is not UTF-8 JSON');
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ScanReportError('SCAN_MALFORMED', 'the scan report is not a JSON object');
  const format = options.format ?? (isSarif(json) ? 'sarif' : isGrype(json) ? 'grype' : isTrivy(json) ? 'trivy' : null);
  switch (format) {
    case 'sarif':
      return parseAs(sarifSchema, fromSarif, json, 'SARIF 2.1.0');
    case 'grype':
      return parseAs(grypeSchema, fromGrype, json, 'Grype JSON');
    case 'trivy':
      return parseAs(trivySchema, fromTrivy, json, 'Trivy JSON');
    default:
      throw new ScanReportError('SCAN_UNKNOWN_FORMAT', 'the scan report is none of Trivy JSON, Grype JSON or SARIF 2.1.0');
  }
}
