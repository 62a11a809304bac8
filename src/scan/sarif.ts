/**
 * SARIF 2.1.0 (`trivy image --format sarif`, `grype IMAGE -o sarif`, other scanners). SARIF is a
 * format for any static analysis, so what a vulnerability report needs is read where scanners
 * put it:
 * - scanner: `runs[0].tool.driver.name` and `.version` (else `.semanticVersion`);
 * - database date: not recorded by SARIF; `runs[].properties.dbDate` when a tool adds it;
 * - report time: the latest `runs[].invocations[].endTimeUtc` (else `startTimeUtc`); Trivy's and
 *   Grype's SARIF carry no invocation, so their reports have no time;
 * - artifact: `runs[].properties` as Trivy writes it for images — `imageName`, `repoDigests`
 *   (`repo@sha256:…`), `imageID` — and a `digest` property; Grype's SARIF names no digest, so a
 *   Grype SARIF report cannot pass a digest check (use its JSON output);
 * - findings: `runs[].results[]`, one per result. The ID is the `ruleId` (`rule.id`, or the rule
 *   at `ruleIndex`); a rule ID that starts with a CVE or GHSA ID followed by more (Grype writes
 *   `CVE-2024-1234-openssl`) gives that ID, the full rule ID kept as an alias. The severity is
 *   the rule's or result's severity tag (Trivy tags rules `CRITICAL`, `HIGH`, …), else its
 *   `security-severity` score (≥ 9 CRITICAL, ≥ 7 HIGH, ≥ 4 MEDIUM, > 0 LOW), else the level
 *   (`error` HIGH, `warning` MEDIUM, `note` LOW, otherwise UNKNOWN). Package and version come
 *   from `Package:` and `Installed Version:` / `Version:` lines of the result message or the
 *   rule help, where the tool writes them (Trivy and Grype do).
 */
import { z } from 'zod';
import { dedupe, digestsOf, isoTime, normalSeverity, severityOfScore, SEVERITIES, type Finding, type ScanReport, type Severity } from './report.js';

const MAX_ITEMS = 100_000;
const str = z.string().max(16_384);

const properties = z.looseObject({ tags: z.array(z.unknown()).max(100).nullish(), 'security-severity': z.union([str, z.number()]).nullish() }).nullish();
const message = z.looseObject({ text: str.nullish() }).nullish();

const rule = z.looseObject({
  id: str,
  properties,
  defaultConfiguration: z.looseObject({ level: str.nullish() }).nullish(),
  help: message,
  fullDescription: message,
});

const result = z.looseObject({
  ruleId: str.nullish(),
  ruleIndex: z.number().int().nullish(),
  rule: z.looseObject({ id: str.nullish(), index: z.number().int().nullish() }).nullish(),
  level: str.nullish(),
  message,
  properties,
});

const run = z.looseObject({
  tool: z.looseObject({
    driver: z.looseObject({ name: str, version: str.nullish(), semanticVersion: str.nullish(), rules: z.array(rule).max(MAX_ITEMS).nullish() }),
  }),
  results: z.array(result).max(MAX_ITEMS).nullish(),
  invocations: z
    .array(z.looseObject({ startTimeUtc: str.nullish(), endTimeUtc: str.nullish() }))
    .max(1000)
    .nullish(),
  properties: z
    .looseObject({
      imageName: str.nullish(),
      repoDigests: z.array(str).max(1000).nullish(),
      imageID: str.nullish(),
      digest: str.nullish(),
      dbDate: str.nullish(),
    })
    .nullish(),
});

export const sarifSchema = z.looseObject({ version: z.literal('2.1.0'), runs: z.array(run).min(1).max(100) });

export function isSarif(json: unknown): boolean {
  const o = json as Record<string, unknown> | null;
  return !!o && typeof o === 'object' && typeof o['version'] === 'string' && Array.isArray(o['runs']);
}

const VULN_ID = /^(CVE-\d{4}-\d{4,}|GHSA(?:-[23456789cfghjmpqrvwx]{4}){3})(?=-.)/i;

function severityTag(tags: readonly unknown[] | null | undefined): Severity | null {
  for (const t of tags ?? []) {
    if (typeof t === 'string' && (SEVERITIES as readonly string[]).includes(t.toUpperCase())) return t.toUpperCase() as Severity;
  }
  return null;
}

function score(value: string | number | null | undefined): Severity | null {
  if (value === null || value === undefined || value === '') return null;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? severityOfScore(n) : null;
}

const LEVELS: Record<string, Severity> = { error: 'HIGH', warning: 'MEDIUM', note: 'LOW' };

function line(texts: (string | null | undefined)[], label: RegExp): string | null {
  for (const text of texts) {
    const m = text ? label.exec(text) : null;
    if (m && m[1]) return m[1];
  }
  return null;
}

export function fromSarif(report: z.infer<typeof sarifSchema>): ScanReport {
  const findings: Finding[] = [];
  let createdAt: string | null = null;
  let dbDate: string | null = null;
  let name: string | null = null;
  const refs: unknown[] = [];
  for (const r of report.runs) {
    const rules = r.tool.driver.rules ?? [];
    const byId = new Map(rules.map((x) => [x.id, x]));
    for (const res of r.results ?? []) {
      const index = res.ruleIndex ?? res.rule?.index ?? undefined;
      const ruleId = res.ruleId ?? res.rule?.id ?? (index !== undefined ? rules[index]?.id : undefined);
      if (!ruleId) continue;
      const ru = byId.get(ruleId) ?? (index !== undefined ? rules[index] : undefined);
      const severity =
        severityTag(res.properties?.tags) ??
        severityTag(ru?.properties?.tags) ??
        score(res.properties?.['security-severity']) ??
        score(ru?.properties?.['security-severity']) ??
        LEVELS[res.level ?? ru?.defaultConfiguration?.level ?? ''] ??
        'UNKNOWN';
      const m = VULN_ID.exec(ruleId);
      const texts = [res.message?.text, ru?.help?.text];
      findings.push({
        id: m ? m[1]! : ruleId,
        aliases: m ? [ruleId] : [],
        severity: normalSeverity(severity),
        package: line(texts, /^Package: *(\S+)/m),
        version: line(texts, /^(?:Installed )?Version: *(\S+)/m),
        fixedVersion: line(texts, /^Fix(?:ed)? Version: *(\S+)/m),
      });
    }
    for (const inv of r.invocations ?? []) {
      const t = isoTime(inv.endTimeUtc) ?? isoTime(inv.startTimeUtc);
      if (t && (!createdAt || t > createdAt)) createdAt = t;
    }
    const p = r.properties;
    if (p) {
      name ??= p.imageName || null;
      refs.push(...(p.repoDigests ?? []), p.imageName, p.imageID, p.digest);
      dbDate ??= isoTime(p.dbDate);
    }
  }
  const driver = report.runs[0]!.tool.driver;
  return {
    format: 'sarif',
    scanner: { name: driver.name.toLowerCase(), version: driver.version || driver.semanticVersion || null },
    dbDate,
    createdAt,
    artifact: { name, digests: digestsOf(refs) },
    findings: dedupe(findings),
  };
}
