/**
 * Scan reports and the sign-after-scan policy (src/scan): each format read from its fixture
 * (test/fixtures/scan, see SOURCES.md) into one summary; the policy's rules — CRITICAL blocks, 3
 * HIGH pass and 4 fail, an ignore entry before and after its date, another digest, an old or
 * undated report — and garbage or oversized input refused with typed errors.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  checkScan,
  parseScanPolicy,
  parseScanReport,
  ScanPolicyError,
  ScanRefusedError,
  ScanReportError,
  type ScanPolicy,
  type ScanVerdict,
} from '../../src/scan/index.js';
import { projectRoot } from '../support/paths.js';

const INDEX = 'sha256:af3fe2cf543a71d26c2475cb626a50058dbc7f367dc16a936b9c5b5803d3595d';
const MANIFEST = 'sha256:2fe531c0d1717976418835fb99b4dea2483a14e441abe3fbd67169efd1fb89d1';
const CONFIG = 'sha256:20548860eea3e0e8de95bca449544c4e8ad253aea21b205a362192e1d8b1999a';
const OTHER = 'sha256:d9298a10d1b0735837dc4bd85dac641b0f3cef27a47e5d53a54f2f3f5b2fcffa';
const NOW = new Date('2026-12-02T09:00:00Z');
const DAY = 86_400;

const fixture = (name: string) => readFileSync(path.join(projectRoot, 'test', 'fixtures', 'scan', name));

function failed(verdict: ScanVerdict): Extract<ScanVerdict, { ok: false }> {
  assert.equal(verdict.ok, false, 'expected the report to fail');
  return verdict as Extract<ScanVerdict, { ok: false }>;
}

/** A Trivy report for `digest` made at `createdAt` with `counts` findings per severity. */
function trivyReport(counts: Record<string, number>, options: { digest?: string; createdAt?: string | null } = {}): string {
  const vulns = Object.entries(counts).flatMap(([severity, n]) =>
    Array.from({ length: n }, (_, i) => ({
      VulnerabilityID: `CVE-2026-${severity.length}${1000 + i}`,
      PkgName: `pkg-${severity.toLowerCase()}-${i}`,
      InstalledVersion: '1.0',
      Severity: severity,
    })),
  );
  return JSON.stringify({
    SchemaVersion: 2,
    Trivy: { Version: '0.58.1' },
    ...(options.createdAt === null ? {} : { CreatedAt: options.createdAt ?? '2026-12-01T10:00:00Z' }),
    ArtifactName: 'registry.example.com/team/app:1.4.2',
    ArtifactType: 'container_image',
    Metadata: { RepoDigests: [`registry.example.com/team/app@${options.digest ?? INDEX}`] },
    Results: [{ Target: 'app (alpine 3.20.3)', Class: 'os-pkgs', Type: 'alpine', Vulnerabilities: vulns }],
  });
}

const check = (bytes: string | Buffer, policy: ScanPolicy, extra: { digest?: string; now?: Date } = {}) =>
  checkScan(bytes, { digest: extra.digest ?? INDEX, now: extra.now ?? NOW, policy });

describe('reading reports', () => {
  test('Trivy JSON: scanner, time, image digests, findings once per (ID, package, version)', () => {
    const r = parseScanReport(fixture('trivy-image.json'));
    assert.equal(r.format, 'trivy');
    assert.deepEqual(r.scanner, { name: 'trivy', version: '0.58.1' });
    assert.equal(r.dbDate, null, 'a standalone Trivy report does not record its database date');
    assert.equal(r.createdAt, '2026-12-01T10:15:30.123Z');
    assert.equal(r.artifact.name, `registry.example.com/team/app@${INDEX}`);
    assert.deepEqual(r.artifact.digests, [INDEX, CONFIG]);
    assert.equal(r.findings.length, 8, 'CVE-2024-34156 in stdlib of two binaries counts once');
    const expat = r.findings.find((f) => f.id === 'CVE-2024-45491')!;
    assert.deepEqual(expat, { id: 'CVE-2024-45491', aliases: [], severity: 'CRITICAL', package: 'libexpat', version: '2.6.2-r0', fixedVersion: '2.6.3-r0' });
    assert.deepEqual(r.findings.find((f) => f.id === 'CVE-2024-4067')!.aliases, ['GHSA-952p-6rrq-rcjv']);
    assert.equal(r.findings.filter((f) => f.id === 'CVE-2024-6119').length, 2, 'one per package');
  });

  test('Trivy in client/server mode records the database date', () => {
    const json = JSON.parse(trivyReport({ HIGH: 1 }));
    json.Trivy.Server = { Version: '0.58.1', VulnerabilityDB: { Version: 2, UpdatedAt: '2026-11-30T06:12:54.118Z', NextUpdate: '2026-12-01T06:12:54.118Z' } };
    assert.equal(parseScanReport(JSON.stringify(json)).dbDate, '2026-11-30T06:12:54.118Z');
  });

  test('Grype JSON: scanner, database build date (v6 and v5 shapes), time, image digests, aliases', () => {
    const r = parseScanReport(fixture('grype-image.json'));
    assert.equal(r.format, 'grype');
    assert.deepEqual(r.scanner, { name: 'grype', version: '0.84.0' });
    assert.equal(r.dbDate, '2026-11-30T04:08:19.000Z');
    assert.equal(r.createdAt, '2026-12-01T10:02:44.518Z');
    assert.equal(r.artifact.name, 'registry.example.com/team/app:1.4.2');
    assert.deepEqual(r.artifact.digests, [INDEX, MANIFEST, CONFIG]);
    assert.equal(r.findings.length, 7);
    const counts = Object.fromEntries(['HIGH', 'MEDIUM', 'LOW', 'NEGLIGIBLE', 'UNKNOWN'].map((s) => [s, r.findings.filter((f) => f.severity === s).length]));
    assert.deepEqual(counts, { HIGH: 3, MEDIUM: 1, LOW: 1, NEGLIGIBLE: 1, UNKNOWN: 1 });
    assert.deepEqual(r.findings.find((f) => f.id === 'GHSA-952p-6rrq-rcjv')!.aliases, ['CVE-2024-4067']);
    const v5 = JSON.parse(fixture('grype-image.json').toString());
    v5.descriptor.db = { built: '2024-03-01T01:27:52Z', schemaVersion: 5, location: '/root/.cache/grype/db/5', checksum: 'sha256:abc', error: null };
    assert.equal(parseScanReport(JSON.stringify(v5)).dbDate, '2024-03-01T01:27:52.000Z');
  });

  test('SARIF as Trivy writes it: severity from the rule tags, package from the message, digests from the run properties', () => {
    const r = parseScanReport(fixture('trivy-image.sarif'));
    assert.equal(r.format, 'sarif');
    assert.deepEqual(r.scanner, { name: 'trivy', version: '0.58.1' });
    assert.equal(r.createdAt, null, "Trivy's SARIF has no invocation time");
    assert.deepEqual(r.artifact.digests, [INDEX, CONFIG]);
    assert.deepEqual(
      r.findings.map((f) => [f.id, f.severity, f.package, f.version, f.fixedVersion]),
      [
        ['CVE-2024-45491', 'CRITICAL', 'libexpat', '2.6.2-r0', '2.6.3-r0'],
        ['CVE-2024-6119', 'HIGH', 'libcrypto3', '3.3.1-r3', '3.3.2-r0'],
        ['CVE-2024-6119', 'HIGH', 'libssl3', '3.3.1-r3', '3.3.2-r0'],
        ['CVE-2024-4067', 'MEDIUM', 'micromatch', '4.0.5', '4.0.8'],
      ],
    );
  });

  test('SARIF as Grype writes it: the vulnerability ID out of the rule ID, severity from security-severity, no digest', () => {
    const r = parseScanReport(fixture('grype-image.sarif'));
    assert.deepEqual(r.scanner, { name: 'grype', version: '0.84.0' });
    assert.deepEqual(r.artifact.digests, []);
    assert.deepEqual(
      r.findings.map((f) => [f.id, f.aliases, f.severity, f.package, f.version]),
      [
        ['CVE-2024-45490', ['CVE-2024-45490-libexpat'], 'HIGH', 'libexpat', '2.6.2-r0'],
        ['CVE-2024-9143', ['CVE-2024-9143-libcrypto3'], 'LOW', 'libcrypto3', '3.3.1-r3'],
        ['GHSA-952p-6rrq-rcjv', ['GHSA-952p-6rrq-rcjv-micromatch'], 'MEDIUM', 'micromatch', '4.0.5'],
      ],
    );
  });

  test('SARIF: the latest invocation time, a digest property, the level when nothing else tells', () => {
    const sarif = {
      version: '2.1.0',
      runs: [
        {
          tool: { driver: { name: 'ExampleScanner', semanticVersion: '2.3.0', rules: [{ id: 'EX-1' }] } },
          invocations: [
            { executionSuccessful: true, startTimeUtc: '2026-12-01T08:00:00Z', endTimeUtc: '2026-12-01T08:03:00Z' },
            { executionSuccessful: true, startTimeUtc: '2026-12-01T08:04:00Z' },
          ],
          properties: { digest: INDEX, dbDate: '2026-11-29T00:00:00Z' },
          results: [
            { ruleIndex: 0, level: 'error', message: { text: 'bad' } },
            { ruleId: 'EX-2', level: 'warning', message: { text: 'meh' } },
            { ruleId: 'EX-3', message: { text: 'no level' } },
            { message: { text: 'no rule at all' } },
          ],
        },
      ],
    };
    const r = parseScanReport(JSON.stringify(sarif));
    assert.deepEqual(r.scanner, { name: 'examplescanner', version: '2.3.0' });
    assert.equal(r.createdAt, '2026-12-01T08:04:00.000Z');
    assert.equal(r.dbDate, '2026-11-29T00:00:00.000Z');
    assert.deepEqual(r.artifact.digests, [INDEX]);
    assert.deepEqual(
      r.findings.map((f) => [f.id, f.severity]),
      [
        ['EX-1', 'HIGH'],
        ['EX-2', 'MEDIUM'],
        ['EX-3', 'UNKNOWN'],
      ],
    );
  });

  test('garbage, oversized and foreign input: typed errors', () => {
    const cases: [string | Buffer, string][] = [
      ['', 'SCAN_MALFORMED'],
      ['not json', 'SCAN_MALFORMED'],
      ['[1,2,3]', 'SCAN_MALFORMED'],
      ['null', 'SCAN_MALFORMED'],
      [Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), 'SCAN_MALFORMED'],
      ['{"hello": "world"}', 'SCAN_UNKNOWN_FORMAT'],
      ['{"bomFormat": "CycloneDX", "specVersion": "1.5"}', 'SCAN_UNKNOWN_FORMAT'],
      ['{"version": "2.0.0", "runs": []}', 'SCAN_MALFORMED'],
      ['{"version": "2.1.0", "runs": [{"tool": {}}]}', 'SCAN_MALFORMED'],
      ['{"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": [{"Severity": "HIGH"}]}]}', 'SCAN_MALFORMED'],
      ['{"matches": [{"vulnerability": {}}], "descriptor": {"name": "grype"}}', 'SCAN_MALFORMED'],
      ['['.repeat(100_000), 'SCAN_MALFORMED'],
    ];
    for (const [bytes, code] of cases) {
      assert.throws(
        () => parseScanReport(bytes),
        (e: unknown) => e instanceof ScanReportError && e.code === code && e.status === 400,
        `${String(bytes).slice(0, 40)} → ${code}`,
      );
    }
    const big = trivyReport({ LOW: 1 }) + ' '.repeat(1024);
    assert.throws(
      () => parseScanReport(big, { maxBytes: 1024 }),
      (e: unknown) => e instanceof ScanReportError && e.code === 'SCAN_TOO_LARGE' && e.status === 413,
    );
    assert.throws(
      () => parseScanReport(Buffer.alloc(9 * 1024 * 1024, 0x20)),
      (e: unknown) => e instanceof ScanReportError && e.code === 'SCAN_TOO_LARGE',
    );
    // checkScan refuses the same way.
    assert.throws(
      () => check('garbage', {}),
      (e: unknown) => e instanceof ScanReportError && e.code === 'SCAN_MALFORMED',
    );
  });

  test('any input either reads or fails with a ScanReportError, never anything else', () => {
    const fixtures = ['trivy-image.json', 'grype-image.json', 'trivy-image.sarif', 'grype-image.sarif'].map(
      (f) => JSON.parse(fixture(f).toString()) as unknown,
    );
    /** Replace the value at a random path of `doc` by `value`. */
    const mutate = (doc: unknown, path: number[], value: unknown): unknown => {
      if (path.length === 0 || doc === null || typeof doc !== 'object') return value;
      const keys = Object.keys(doc as object);
      if (keys.length === 0) return value;
      const key = keys[path[0]! % keys.length]!;
      const copy: Record<string, unknown> = Array.isArray(doc) ? ([...doc] as unknown as Record<string, unknown>) : { ...(doc as Record<string, unknown>) };
      copy[key] = mutate((doc as Record<string, unknown>)[key], path.slice(1), value);
      return copy;
    };
    const outcome = (input: string) => {
      try {
        parseScanReport(input);
      } catch (e) {
        assert.ok(e instanceof ScanReportError, `unexpected ${String(e)}`);
      }
    };
    fc.assert(
      fc.property(fc.nat(3), fc.array(fc.nat(50), { maxLength: 6 }), fc.jsonValue(), (which, path, value) =>
        outcome(JSON.stringify(mutate(fixtures[which], path, value))),
      ),
      { numRuns: 1500 },
    );
    fc.assert(fc.property(fc.string({ maxLength: 200 }), outcome), { numRuns: 500 });
  });

  test('a format named by the caller is held to', () => {
    assert.throws(
      () => parseScanReport(fixture('grype-image.json'), { format: 'trivy' }),
      (e: unknown) => e instanceof ScanReportError && e.code === 'SCAN_MALFORMED',
    );
    assert.equal(parseScanReport(fixture('grype-image.json'), { format: 'grype' }).format, 'grype');
  });
});

describe('checkScan: the policy', () => {
  const strict: ScanPolicy = { maxAge: 7 * DAY, maxSeverity: { CRITICAL: 0, HIGH: 3 } };

  test('a passing report: the summary kept as evidence', () => {
    const bytes = fixture('grype-image.json');
    const verdict = check(bytes, strict);
    assert.ok(verdict.ok, JSON.stringify(verdict));
    assert.deepEqual(verdict.summary, {
      reportDigest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
      format: 'grype',
      scanner: 'grype',
      scannerVersion: '0.84.0',
      dbDate: '2026-11-30T04:08:19.000Z',
      createdAt: '2026-12-01T10:02:44.518Z',
      digest: INDEX,
      counts: { CRITICAL: 0, HIGH: 3, MEDIUM: 1, LOW: 1, NEGLIGIBLE: 1, UNKNOWN: 1 },
      ignored: [],
    });
  });

  test('any CRITICAL blocks under CRITICAL: 0; the blocking findings come back', () => {
    const v = failed(check(trivyReport({ CRITICAL: 1, HIGH: 1, LOW: 5 }), strict));
    assert.equal(v.code, 'SCAN_BLOCKED');
    assert.deepEqual(
      v.blocking.map((f) => f.severity),
      ['CRITICAL'],
    );
    assert.match(v.reasons[0]!, /1 CRITICAL \(at most 0\)/);
    const e = new ScanRefusedError(v);
    assert.equal(e.code, 'SCAN_BLOCKED');
    assert.equal(e.status, 422);
    assert.equal(e.detail().blocking[0]!.severity, 'CRITICAL');
  });

  test('3 HIGH pass and 4 HIGH fail under HIGH: 3; severities not named are not limited', () => {
    assert.equal(check(trivyReport({ HIGH: 3, MEDIUM: 50, UNKNOWN: 9 }), strict).ok, true);
    const v = failed(check(trivyReport({ HIGH: 4 }), strict));
    assert.equal(v.code, 'SCAN_BLOCKED');
    assert.equal(v.blocking.length, 4);
    assert.equal(v.summary.counts.HIGH, 4);
  });

  test('the Trivy fixture fails (1 CRITICAL, 4 HIGH); ignoring two IDs until a later date lets it pass', () => {
    const v = failed(check(fixture('trivy-image.json'), strict));
    assert.deepEqual(v.reasons, ['the report has 1 CRITICAL (at most 0), 4 HIGH (at most 3)']);
    assert.deepEqual(v.blocking.map((f) => f.id).sort(), ['CVE-2024-34156', 'CVE-2024-45490', 'CVE-2024-45491', 'CVE-2024-6119', 'CVE-2024-6119']);
    const ignoring: ScanPolicy = {
      ...strict,
      ignore: [
        { id: 'CVE-2024-45491', until: '2026-12-31', reason: 'libexpat not reachable from the app' },
        { id: 'cve-2024-34156', until: '2026-12-02T10:00:00Z' },
      ],
    };
    const passed = check(fixture('trivy-image.json'), ignoring);
    assert.ok(passed.ok, JSON.stringify(passed));
    assert.deepEqual(passed.summary.ignored, ['CVE-2024-45491', 'CVE-2024-34156']);
    assert.equal(passed.summary.counts.CRITICAL, 0);
    assert.equal(passed.summary.counts.HIGH, 3);
  });

  test('an ignore entry ends: a date covers its whole day (UTC), a time ends at that instant', () => {
    const policy: ScanPolicy = { maxSeverity: { CRITICAL: 0 }, ignore: [{ id: 'CVE-2026-81000', until: '2026-12-02' }] };
    const report = trivyReport({ CRITICAL: 1 });
    assert.equal(check(report, policy, { now: new Date('2026-12-02T23:59:59Z') }).ok, true);
    assert.equal(failed(check(report, policy, { now: new Date('2026-12-03T00:00:00Z') })).code, 'SCAN_BLOCKED');
    const timed: ScanPolicy = { maxSeverity: { CRITICAL: 0 }, ignore: [{ id: 'CVE-2026-81000', until: '2026-12-02T09:00:00Z' }] };
    assert.equal(check(report, timed, { now: new Date('2026-12-02T08:59:59Z') }).ok, true);
    assert.equal(check(report, timed, { now: new Date('2026-12-02T09:00:00Z') }).ok, false);
  });

  test('an ignore entry also matches an alias (Grype related vulnerabilities, Trivy vendor IDs)', () => {
    const policy: ScanPolicy = { maxSeverity: { MEDIUM: 0 }, ignore: [{ id: 'CVE-2024-4067', until: '2027-01-01' }] };
    assert.equal(check(fixture('grype-image.json'), policy).ok, true);
    const trivy: ScanPolicy = { maxSeverity: { MEDIUM: 1 }, ignore: [{ id: 'GHSA-952p-6rrq-rcjv', until: '2027-01-01' }] };
    assert.equal(check(fixture('trivy-image.json'), trivy).ok, true);
  });

  test('a report for another digest fails, whatever it found; every digest form it names is accepted', () => {
    const v = failed(check(trivyReport({}), strict, { digest: OTHER }));
    assert.equal(v.code, 'SCAN_WRONG_DIGEST');
    assert.match(v.reasons[0]!, new RegExp(`for ${INDEX}, not ${OTHER}`));
    for (const digest of [INDEX, MANIFEST, CONFIG, INDEX.slice('sha256:'.length), INDEX.toUpperCase().replace('SHA256', 'sha256')]) {
      assert.equal(check(fixture('grype-image.json'), strict, { digest }).ok, true, digest);
    }
  });

  test('a report that names no digest fails (Grype SARIF)', () => {
    const v = failed(check(fixture('grype-image.sarif'), {}));
    assert.equal(v.code, 'SCAN_NO_DIGEST');
  });

  test('an old report fails; a report just inside the limit passes; a report from the future fails', () => {
    const at = (createdAt: string) => check(trivyReport({}, { createdAt }), { maxAge: 7 * DAY });
    assert.equal(failed(at('2026-11-25T08:59:59Z')).code, 'SCAN_TOO_OLD');
    assert.match(failed(at('2026-11-25T08:59:59Z')).reasons[0]!, /older than 604800 s/);
    assert.equal(at('2026-11-25T09:00:00Z').ok, true);
    assert.equal(failed(at('2026-12-02T09:10:00Z')).code, 'SCAN_FROM_FUTURE');
    assert.equal(at('2026-12-02T09:04:00Z').ok, true, 'a few minutes of clock difference are allowed');
  });

  test('with maxAge a report that records no time fails; without maxAge it may pass', () => {
    assert.equal(failed(check(fixture('trivy-image.sarif'), { maxAge: DAY, maxSeverity: { CRITICAL: 5 } })).code, 'SCAN_NO_TIME');
    assert.equal(check(trivyReport({}, { createdAt: null }), {}).ok, true);
  });

  test('every failed check is reported, the first one as the code', () => {
    const v = failed(check(trivyReport({ CRITICAL: 2 }, { createdAt: '2026-01-01T00:00:00Z' }), strict, { digest: OTHER }));
    assert.equal(v.code, 'SCAN_WRONG_DIGEST');
    assert.equal(v.reasons.length, 3);
    assert.equal(v.blocking.length, 2);
  });

  test('a policy that is not one is refused', () => {
    for (const bad of [
      { maxAge: -1 },
      { maxAge: 1.5 },
      { maxSeverity: { CRITICAL: -1 } },
      { maxSeverity: { SEVERE: 0 } },
      { ignore: [{ id: 'CVE-1', until: 'next week' }] },
      { ignore: [{ id: 'CVE-1', until: '2026-13-45' }] },
      { ignore: [{ id: '', until: '2026-01-01' }] },
      { maxAge: 60, extra: true },
    ]) {
      assert.throws(() => parseScanPolicy(bad), ScanPolicyError, JSON.stringify(bad));
    }
    assert.throws(() => check(trivyReport({}), { maxAge: 'soon' } as unknown as ScanPolicy), ScanPolicyError);
    assert.deepEqual(
      parseScanPolicy({ maxAge: 3600, maxSeverity: { CRITICAL: 0, HIGH: 3 }, ignore: [{ id: 'CVE-2024-1', until: '2026-12-31' }] }).maxSeverity,
      {
        CRITICAL: 0,
        HIGH: 3,
      },
    );
  });
});
