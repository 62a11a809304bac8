/** Scan reports for sign-after-scan tests: the Trivy fixture, made for an image digest at a time. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './paths.js';

interface TrivyReport {
  CreatedAt: string;
  ArtifactName: string;
  Metadata: { RepoDigests: string[] };
  Results: { Vulnerabilities?: { Severity: string }[] }[];
}

const FIXTURE = path.join(projectRoot, 'test', 'fixtures', 'scan', 'trivy-image.json');

/** test/fixtures/scan/trivy-image.json for `repo@digest` (digest `sha256:…`), made at `createdAt`, with or without its CRITICAL finding. */
export function trivyReport(repo: string, digest: string, createdAt: Date, withCritical: boolean): TrivyReport {
  const report = JSON.parse(readFileSync(FIXTURE, 'utf8')) as TrivyReport;
  report.CreatedAt = createdAt.toISOString();
  report.ArtifactName = `${repo}@${digest}`;
  report.Metadata.RepoDigests = [`${repo}@${digest}`];
  if (!withCritical) for (const r of report.Results) r.Vulnerabilities = r.Vulnerabilities?.filter((v) => v.Severity !== 'CRITICAL');
  return report;
}
