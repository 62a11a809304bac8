/**
 * Grype's JSON report (`grype IMAGE -o json`). Read:
 * - scanner: `descriptor.name` and `descriptor.version`;
 * - database date: `descriptor.db.built` (database schema v5) or `descriptor.db.status.built` (v6);
 * - report time: `descriptor.timestamp`;
 * - artifact (when `source.type` is `image`): `source.target.userInput`, and its digests from
 *   `source.target.repoDigests` (`repo@sha256:…`), `source.target.manifestDigest`,
 *   `source.target.userInput` when it names a digest, and `source.target.imageID`;
 * - findings: `matches[]` — `vulnerability.id`, `relatedVulnerabilities[].id` as aliases,
 *   `vulnerability.severity`, `artifact.name`, `artifact.version`, `vulnerability.fix.versions[0]`.
 */
import { z } from 'zod';
import { dedupe, digestsOf, isoTime, normalSeverity, type Finding, type ScanReport } from './report.js';

const MAX_ITEMS = 100_000;
const str = z.string().max(4096);

const match = z.looseObject({
  vulnerability: z.looseObject({
    id: str.min(1),
    severity: str.nullish(),
    fix: z.looseObject({ versions: z.array(str).max(1000).nullish() }).nullish(),
  }),
  relatedVulnerabilities: z
    .array(z.looseObject({ id: str }))
    .max(1000)
    .nullish(),
  artifact: z.looseObject({ name: str.nullish(), version: str.nullish() }),
});

const imageTarget = z.looseObject({
  userInput: str.nullish(),
  imageID: str.nullish(),
  manifestDigest: str.nullish(),
  repoDigests: z.array(str).max(1000).nullish(),
});

export const grypeSchema = z.looseObject({
  matches: z.array(match).max(MAX_ITEMS),
  source: z.looseObject({ type: str, target: z.unknown() }).nullish(),
  descriptor: z.looseObject({
    name: str,
    version: str.nullish(),
    timestamp: str.nullish(),
    db: z
      .looseObject({
        built: str.nullish(),
        status: z.looseObject({ built: str.nullish() }).nullish(),
      })
      .nullish(),
  }),
});

export function isGrype(json: unknown): boolean {
  const o = json as Record<string, unknown> | null;
  return !!o && typeof o === 'object' && Array.isArray(o['matches']) && typeof o['descriptor'] === 'object';
}

export function fromGrype(report: z.infer<typeof grypeSchema>): ScanReport {
  const findings: Finding[] = report.matches.map((m) => ({
    id: m.vulnerability.id,
    aliases: [...new Set((m.relatedVulnerabilities ?? []).map((r) => r.id).filter((id) => id !== m.vulnerability.id))],
    severity: normalSeverity(m.vulnerability.severity),
    package: m.artifact.name || null,
    version: m.artifact.version || null,
    fixedVersion: m.vulnerability.fix?.versions?.[0] || null,
  }));
  let name: string | null = null;
  let digests: string[] = [];
  if (report.source?.type === 'image') {
    const target = imageTarget.safeParse(report.source.target);
    if (target.success) {
      const t = target.data;
      name = t.userInput || null;
      digests = digestsOf([...(t.repoDigests ?? []), t.manifestDigest, t.userInput, t.imageID]);
    }
  }
  const db = report.descriptor.db;
  return {
    format: 'grype',
    scanner: { name: report.descriptor.name, version: report.descriptor.version || null },
    dbDate: isoTime(db?.built ?? db?.status?.built),
    createdAt: isoTime(report.descriptor.timestamp),
    artifact: { name, digests },
    findings: dedupe(findings),
  };
}
