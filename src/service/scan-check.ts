/**
 * The scan check of server-held signers: src/scan's sign-after-scan policy applied to the report a
 * signing call carries. The report is the scanner's JSON (as an object, or as the text the scanner
 * wrote); a failing one throws ScanRefusedError (422, with the reasons and the blocking findings),
 * one that is no report ScanReportError (400, or 413 when too large). A passing one answers the
 * summary that is signed into the target's `custom.signet.scan` and kept in the audit trail.
 */
import { checkScan, ScanRefusedError, type ScanPolicy as ScanRules } from '../scan/index.js';
import type { ScanPolicy } from './signer-sign.js';

export const scanChecker: ScanPolicy = {
  check({ report, rules, digest, nowMs }) {
    const bytes = typeof report === 'string' ? report : JSON.stringify(report);
    const verdict = checkScan(bytes, { digest, now: new Date(nowMs), policy: rules as ScanRules });
    if (!verdict.ok) throw new ScanRefusedError(verdict);
    return { ...verdict.summary };
  },
};
