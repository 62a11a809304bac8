/** Scan reports and the sign-after-scan policy: what the signing route calls. */
export { checkScan, judge, parseScanPolicy, scanPolicySchema, ScanPolicyError, ScanRefusedError, FUTURE_SKEW_MS } from './policy.js';
export type { CheckScanOptions, ScanPolicy, ScanRefusalCode, ScanSummary, ScanVerdict } from './policy.js';
export { parseScanReport, DEFAULT_MAX_REPORT_BYTES, type ParseOptions } from './parse.js';
export { ScanReportError, SCAN_REPORT_ERROR_STATUS, SEVERITIES } from './report.js';
export type { Finding, ScanFormat, ScanReport, ScanReportErrorCode, Severity } from './report.js';
