/**
 * Trivy's JSON report (`trivy image --format json`, SchemaVersion 2). Read:
 * - scanner: `Trivy.Version` (written by recent Trivy releases; older reports have no version);
 * - database date: `Trivy.Server.VulnerabilityDB.UpdatedAt` when the report was made in
 *   client/server mode; a standalone report does not record it;
 * - report time: `CreatedAt`;
 * - artifact: `ArtifactName`, and its digests from `Metadata.RepoDigests` (`repo@sha256:…`, the
 *   manifest or index digest in the registry), `ArtifactName` when it names a digest, and
 *   `Metadata.ImageID` (the image configuration's digest);
 * - findings: `Results[].Vulnerabilities[]` — `VulnerabilityID`, `VendorIDs` as aliases,
 *   `Severity`, `PkgName`, `InstalledVersion`, `FixedVersion`.
 */
import { z } from 'zod';
import { dedupe, digestsOf, isoTime, normalSeverity, type Finding, type ScanReport } from './report.js';

const MAX_ITEMS = 100_000;
const str = z.string().max(4096);

const vulnerability = z.looseObject({
  VulnerabilityID: str.min(1),
  VendorIDs: z.array(str).max(100).nullish(),
  PkgName: str.nullish(),
  InstalledVersion: str.nullish(),
  FixedVersion: str.nullish(),
  Severity: str.nullish(),
});

export const trivySchema = z.looseObject({
  SchemaVersion: z.number().int(),
  CreatedAt: str.nullish(),
  ArtifactName: str.nullish(),
  ArtifactType: str.nullish(),
  Trivy: z
    .looseObject({
      Version: str.nullish(),
      Server: z.looseObject({ VulnerabilityDB: z.looseObject({ UpdatedAt: str.nullish() }).nullish() }).nullish(),
    })
    .nullish(),
  Metadata: z
    .looseObject({
      ImageID: str.nullish(),
      RepoDigests: z.array(str).max(1000).nullish(),
      RepoTags: z.array(str).max(1000).nullish(),
    })
    .nullish(),
  Results: z
    .array(z.looseObject({ Target: str, Vulnerabilities: z.array(vulnerability).max(MAX_ITEMS).nullish() }))
    .max(MAX_ITEMS)
    .nullish(),
});

/** Whether this JSON looks like a Trivy report (before it is checked in full). */
export function isTrivy(json: unknown): boolean {
  const o = json as Record<string, unknown> | null;
  return !!o && typeof o === 'object' && typeof o['SchemaVersion'] === 'number' && ('Results' in o || 'ArtifactName' in o);
}

export function fromTrivy(report: z.infer<typeof trivySchema>): ScanReport {
  const findings: Finding[] = [];
  for (const result of report.Results ?? []) {
    for (const v of result.Vulnerabilities ?? []) {
      findings.push({
        id: v.VulnerabilityID,
        aliases: (v.VendorIDs ?? []).filter((a) => a !== v.VulnerabilityID),
        severity: normalSeverity(v.Severity),
        package: v.PkgName || null,
        version: v.InstalledVersion || null,
        fixedVersion: v.FixedVersion || null,
      });
    }
  }
  const meta = report.Metadata;
  return {
    format: 'trivy',
    scanner: { name: 'trivy', version: report.Trivy?.Version || null },
    dbDate: isoTime(report.Trivy?.Server?.VulnerabilityDB?.UpdatedAt),
    createdAt: isoTime(report.CreatedAt),
    artifact: { name: report.ArtifactName || null, digests: digestsOf([...(meta?.RepoDigests ?? []), report.ArtifactName, meta?.ImageID]) },
    findings: dedupe(findings),
  };
}
