/**
 * Results of the client benchmark (bench/client.ts): its JSON record, the "Client commands"
 * section of docs/benchmarks.md (between markers, so `npm run bench` keeps it when it rewrites
 * the rest of the page) and the printed summary.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ProfileSummary } from './cpu-profile.js';
import { NOISY_PCT } from './noise.js';

export interface Sample {
  wallMs: number;
  /** Peak RSS of the process (ru_maxrss, from /usr/bin/time), kB. */
  rssKb: number;
  /** User + system CPU of the process, ms (10 ms resolution). */
  cpuMs: number;
}

export interface Stats {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
  mean: number;
}

export interface ContenderResult {
  id: string;
  label: string;
  command: string;
  wallMs: Stats;
  rssKb: Stats;
  cpuMeanMs: number;
  /** CPU the server spent per run of this client (mean; 10 ms resolution per run), ms. */
  serverCpuMeanMs: number | null;
  samples: Sample[];
}

export interface ClientMeasurement {
  id: string;
  title: string;
  /** The server both clients ran against; null for the start-up measurement. */
  server: string | null;
  contenders: ContenderResult[];
  /** Share of the machine busy with anything but these processes and the server during the runs, %. */
  otherPct: number;
  elapsedS: number;
  notes: string[];
}

export interface ClientRatio {
  measurement: string;
  server: string | null;
  numerator: string;
  denominator: string;
  /** Wall time ratios: < 1 means the numerator (Signet) is faster. */
  median: number;
  p90: number;
  min: number;
  /** Peak RSS ratio (medians). */
  rss: number;
  noisy: boolean;
}

export interface ProfileRow {
  command: string;
  /** How many profiled runs the figures are the medians of. */
  runs: number;
  /** Wall time of the profiled runs (median; profiling adds some overhead), ms. */
  wallMs: number;
  summary: ProfileSummary;
}

export interface ClientRecord {
  startedAt: string;
  finishedAt: string;
  elapsedS: number;
  command: string;
  code: { git: string; srcDigest: string };
  settings: { runs: number; warmup: number; servers: string[]; profile: boolean };
  /** Time spent waiting for quiet and re-measuring under interference, and how many re-measurements. */
  noise: { budgetS: number; spentS: number; remeasured: number };
  machine: {
    nproc: number;
    cpuModel: string;
    kernel: string;
    node: string;
    notary: string;
    busyBeforeStartPct: number;
    loadavgStart: number[];
    loadavgEnd: number[];
  };
  servers: { id: string; label: string; url: string }[];
  /** Per server: the roles each repository's snapshot lists (the same on both sides). */
  shapes: Record<string, Record<string, string[]>>;
  /** Per sign measurement: how many versions each role moved on each side (must be the same). */
  checks: { server: string; measurement: string; signet: Record<string, number>; notary: Record<string, number>; same: boolean }[];
  measurements: ClientMeasurement[];
  ratios: ClientRatio[];
  profiles: ProfileRow[];
  failures: string[];
}

/** Nearest-rank percentiles; the median of an even count is the mean of the middle two. */
export function stats(values: number[]): Stats {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  const rank = (p: number) => v[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]!;
  const median = n % 2 ? v[(n - 1) / 2]! : (v[n / 2 - 1]! + v[n / 2]!) / 2;
  return { n, median, p90: rank(0.9), min: v[0]!, max: v[n - 1]!, mean: v.reduce((a, b) => a + b, 0) / n };
}

/** Which contenders are compared: Signet over the reference, and start-up over the floors. */
const RATIO_PAIRS: { measurement: string | null; numerator: string; denominator: string }[] = [
  { measurement: null, numerator: 'signet', denominator: 'notary' },
  { measurement: 'startup', numerator: 'signet-version', denominator: 'notary-version' },
  { measurement: 'startup', numerator: 'signet-help', denominator: 'notary-version' },
  { measurement: 'startup', numerator: 'signet-version', denominator: 'node' },
  { measurement: 'startup', numerator: 'signet-help', denominator: 'node' },
];

export function clientRatios(measurements: ClientMeasurement[]): ClientRatio[] {
  const rows: ClientRatio[] = [];
  for (const m of measurements) {
    for (const p of RATIO_PAIRS) {
      if (p.measurement !== null && p.measurement !== m.id) continue;
      const a = m.contenders.find((c) => c.id === p.numerator);
      const b = m.contenders.find((c) => c.id === p.denominator);
      if (!a || !b) continue;
      rows.push({
        measurement: m.id,
        server: m.server,
        numerator: a.label,
        denominator: b.label,
        median: a.wallMs.median / b.wallMs.median,
        p90: a.wallMs.p90 / b.wallMs.p90,
        min: a.wallMs.min / b.wallMs.min,
        rss: a.rssKb.median / b.rssKb.median,
        noisy: m.otherPct >= NOISY_PCT,
      });
    }
  }
  return rows;
}

// ---- formatting ----

const fmt = (v: number | null | undefined, digits = 1) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const ratio = (v: number) => `${v.toFixed(2)}×`;
const mb = (kb: number) => (kb / 1024).toFixed(0);

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export const CLIENT_SECTION_START = '<!-- client-bench:start (generated by `npm run bench:client`; rerun it to refresh this section) -->';
export const CLIENT_SECTION_END = '<!-- client-bench:end -->';

export function clientResultFile(record: ClientRecord): string {
  return `bench/results/${record.startedAt.replace(/[:.]/g, '-')}-client.json`;
}

const serverLabel = (record: ClientRecord, id: string | null) => (id === null ? '–' : (record.servers.find((s) => s.id === id)?.label ?? id));

export function renderClientSection(record: ClientRecord): string {
  const { machine, settings } = record;
  const out: string[] = [];
  out.push(CLIENT_SECTION_START);
  out.push('## Client commands');
  out.push('');
  out.push('Generated by `npm run bench:client` (bench/client.ts), separately from the server benchmarks above; the raw');
  out.push(`record of this run is \`${clientResultFile(record)}\`.`);
  out.push('');
  out.push("Whole processes, as a pipeline step runs them: Signet's `signet trust sign` / `signet verify` against the");
  out.push('reference `notary` CLI (Go) doing the same change or check, **both clients against the same server** in one');
  out.push("run, once against Signet's server and once against the reference notary-server. Ratios are Signet / reference:");
  out.push('**< 1 favours Signet**; the goal is ≤ 1× for signing and verifying.');
  out.push('');
  out.push('### Ratios');
  out.push('');
  out.push(`† = the machine was ≥ ${NOISY_PCT}% busy with other work during the runs.`);
  out.push('');
  out.push(
    table(
      ['measurement', 'server', 'Signet / reference', 'median', 'p90', 'min', 'peak RSS'],
      record.ratios.map((r) => [
        `\`${r.measurement}\`${r.noisy ? ' †' : ''}`,
        serverLabel(record, r.server),
        `${r.numerator} / ${r.denominator}`,
        `**${ratio(r.median)}**`,
        ratio(r.p90),
        ratio(r.min),
        ratio(r.rss),
      ]),
    ),
  );
  const versus = record.ratios.filter((r) => r.server !== null);
  if (versus.length) {
    const met = versus.filter((r) => r.median <= 1);
    const best = versus.reduce((a, b) => (b.median < a.median ? b : a));
    out.push('');
    out.push(
      `Goal (Signet ≤ 1× the reference): met in ${met.length} of ${versus.length} sign and verify measurements; closest: \`${best.measurement}\` against ${serverLabel(record, best.server)}, ${ratio(best.median)}.`,
    );
  }
  const version = record.measurements.find((m) => m.id === 'startup')?.contenders.find((c) => c.id === 'signet-version');
  const floor = record.measurements.find((m) => m.id === 'startup')?.contenders.find((c) => c.id === 'node');
  if (version && floor) {
    out.push('');
    out.push(
      `Start-up: \`signet --version\` takes ${fmt(version.wallMs.median)} ms (median; p90 ${fmt(version.wallMs.p90)} ms), against ${fmt(floor.wallMs.median)} ms for \`node -e 0\`.`,
    );
  }
  out.push('');
  out.push('### Wall time per process');
  out.push('');
  out.push(
    `Milliseconds over ${settings.runs} runs per contender (after ${settings.warmup} discarded warm-up runs); peak RSS is the median of the process's maximum`,
  );
  out.push('resident set; CPU is user + system of the process (mean; /usr/bin/time has 10 ms resolution per run) and, where a');
  out.push('server is involved, the CPU that server spent per run of that client (mean).');
  out.push('');
  const rows: string[][] = [];
  for (const m of record.measurements) {
    for (const c of m.contenders) {
      rows.push([
        `\`${m.id}\``,
        serverLabel(record, m.server),
        c.label,
        `**${fmt(c.wallMs.median)}**`,
        fmt(c.wallMs.p90),
        fmt(c.wallMs.min),
        fmt(c.wallMs.max),
        mb(c.rssKb.median),
        fmt(c.cpuMeanMs, 0),
        fmt(c.serverCpuMeanMs, 0),
        [m.otherPct >= 10 ? `other load ${m.otherPct.toFixed(0)}%` : '', ...m.notes].filter(Boolean).join('; '),
      ]);
    }
  }
  out.push(table(['measurement', 'server', 'process', 'median', 'p90', 'min', 'max', 'peak RSS MB', 'CPU ms', 'server CPU ms', 'notes'], rows));
  out.push('');
  out.push('Measurements:');
  out.push('');
  for (const m of record.measurements.filter((x, i, all) => all.findIndex((y) => y.id === x.id) === i)) {
    out.push(`- \`${m.id}\`: ${m.title}.`);
    for (const c of m.contenders) out.push(`  - ${c.label}: \`${c.command}\``);
  }
  out.push('');
  out.push('### Method');
  out.push('');
  const spawn = record.measurements.find((m) => m.id === 'startup')?.contenders.find((c) => c.id === 'true');
  out.push('- Each run is one process started from the bench (node:child_process `spawnSync` through `/usr/bin/time`),');
  out.push(`  timed from spawn to exit; the spawn costs the same for every contender${spawn ? ` (\`true\` takes ${fmt(spawn.wallMs.median)} ms)` : ''}.`);
  out.push('  The contenders of a measurement run in rounds, one run each per round, the order rotated from round to');
  out.push('  round so that noise spreads over all of them.');
  out.push('- Servers: both on 127.0.0.1 over https with the same RSA-2048 certificate; both clients are given its CA');
  out.push("  (`--tlscacert`). Signet's server runs with its embedded PGlite store, notary-server with its memory store");
  out.push('  (started by anchor-up.sh), both at log level warn.');
  out.push('- Repositories: one per client, of the same shape (checked from each snapshot): made as `docker trust sign`');
  out.push("  makes one, root and targets keys in the client's trust directory, **snapshot and timestamp keys on the");
  out.push('  server** (notary: `init -p`, then `key rotate GUN snapshot -r`), delegations `targets/releases` and');
  out.push('  `targets/bench` with one key (notary: `delegation add`, `key import`), a tag `init` signed. Each measured');
  out.push('  sign publishes a new tag into that already initialised repository, then the server signs snapshot and');
  out.push('  timestamp. The notary CLI publishes with `addhash -p` (stage and publish in one process), the quicker of');
  out.push('  its two ways (`addhash` then `publish` is two processes).');
  if (record.checks.length) {
    const all = record.checks.every((c) => c.same);
    const moved = (d: Record<string, number>) =>
      Object.entries(d)
        .filter(([, v]) => v !== 0)
        .map(([r, v]) => `${r} +${v}`)
        .join(', ');
    out.push(
      `- Checked in this run (from the server, before and after each sign measurement): ${all ? 'both clients moved the same roles by the same number of versions' : '**the clients changed different roles** (see the failures)'}: ${record.checks.map((c) => `\`${c.measurement}\` on ${c.server}: ${moved(c.signet)} (Signet), ${moved(c.notary)} (reference)`).join('; ')}.`,
    );
    out.push("  Before measuring, each client verified the other's repository (`signet verify --signer bench`, `notary lookup`).");
  }
  out.push("- Verify: a separate trust directory without keys, as a consumer's. Warm: it already trusts the root and");
  out.push('  holds the current metadata. Cold: an empty trust directory every run (trust on first use).');
  out.push('- Passphrases come from the environment (`NOTARY_*_PASSPHRASE`, `DOCKER_CONTENT_TRUST_*_PASSPHRASE`); every');
  out.push('  process gets the same minimal environment (PATH, an empty HOME and DOCKER_CONFIG; no NODE_OPTIONS and no');
  out.push('  NODE_EXTRA_CA_CERTS: pointed at a system bundle, the latter makes every Node process, `node -e 0` included,');
  out.push('  start about 30 ms later on this machine, as Node parses the bundle at start-up).');
  out.push('');
  if (record.profiles.length) {
    out.push("### Where Signet's time goes");
    out.push('');
    out.push(`${record.profiles[0]!.runs} runs of each Signet command under \`node --cpu-prof\` (against Signet's server), their samples grouped by what`);
    out.push('their stack is doing; each figure is the median over the runs. A profile starts once V8 is up, so it covers');
    out.push('somewhat less than the wall time, and profiling slows a run down a little.');
    out.push('');
    const categories = [...new Set(record.profiles.flatMap((p) => p.summary.categories.map((c) => c.category)))];
    const totals = new Map(categories.map((c) => [c, record.profiles.reduce((a, p) => a + (p.summary.categories.find((x) => x.category === c)?.ms ?? 0), 0)]));
    categories.sort((a, b) => totals.get(b)! - totals.get(a)!);
    out.push(
      table(
        ['ms', ...record.profiles.map((p) => p.command)],
        [
          ['wall time of a profiled run', ...record.profiles.map((p) => fmt(p.wallMs))],
          ['covered by the profile', ...record.profiles.map((p) => fmt(p.summary.profiledMs))],
          ...categories.map((c) => [c, ...record.profiles.map((p) => fmt(p.summary.categories.find((x) => x.category === c)?.ms))]),
        ],
      ),
    );
    out.push('');
  }
  out.push('### Run');
  out.push('');
  out.push(`- date: ${record.startedAt} (took ${record.elapsedS.toFixed(0)} s)`);
  out.push(`- command: \`${record.command}\``);
  out.push(`- code: git \`${record.code.git}\` (uncommitted changes included when it says dirty), compiled src digest \`${record.code.srcDigest}\``);
  out.push(
    `- machine: \`nproc\` = ${machine.nproc}, ${machine.cpuModel}, Linux ${machine.kernel}; ${machine.busyBeforeStartPct.toFixed(0)}% busy with other work just before the start; load average at start ${machine.loadavgStart.map((v) => v.toFixed(2)).join(' ')}, at end ${machine.loadavgEnd.map((v) => v.toFixed(2)).join(' ')}`,
  );
  out.push(`- node ${machine.node}; notary and notary-server ${machine.notary}`);
  out.push(
    `- interference: ${record.noise.spentS.toFixed(0)} s of the ${record.noise.budgetS} s noise budget spent waiting for quiet or re-measuring (${record.noise.remeasured} measurements taken twice)`,
  );
  out.push(`- servers: ${record.servers.map((s) => `${s.label} (${s.url})`).join('; ')}`);
  if (record.failures.length) {
    out.push('');
    out.push('Failures in this run:');
    out.push('');
    for (const f of record.failures) out.push(`- ${f.replace(/\n/g, ' ').slice(0, 600)}`);
  }
  out.push(CLIENT_SECTION_END);
  return out.join('\n');
}

/** The client section of a benchmarks page, or null when it has none. */
export function clientSection(markdown: string): string | null {
  const start = markdown.indexOf(CLIENT_SECTION_START);
  const end = markdown.indexOf(CLIENT_SECTION_END);
  if (start < 0 || end < start) return null;
  return markdown.slice(start, end + CLIENT_SECTION_END.length);
}

/** `markdown` with its client section replaced by `section` (appended when it has none). */
export function withClientSection(markdown: string, section: string): string {
  const old = clientSection(markdown);
  if (old) return markdown.replace(old, () => section);
  return `${markdown.trimEnd()}\n\n${section}\n`;
}

export function writeClientOutputs(root: string, record: ClientRecord): { json: string; markdown: string } {
  const json = path.join(root, clientResultFile(record));
  mkdirSync(path.dirname(json), { recursive: true });
  writeFileSync(json, JSON.stringify(record, null, 2) + '\n');
  const markdown = path.join(root, 'docs', 'benchmarks.md');
  const page = existsSync(markdown) ? readFileSync(markdown, 'utf8') : '# Benchmarks\n';
  writeFileSync(markdown, withClientSection(page, renderClientSection(record)));
  return { json, markdown };
}

export function clientSummary(record: ClientRecord): string {
  const lines = ['', 'Client commands (wall time ratios, median; < 1 favours Signet):'];
  for (const r of record.ratios) {
    lines.push(
      `  ${r.measurement.padEnd(17)} ${(r.server ?? '-').padEnd(7)} ${`${r.numerator} / ${r.denominator}`.padEnd(38)} ${ratio(r.median).padStart(7)}  p90 ${ratio(r.p90).padStart(7)}  min ${ratio(r.min).padStart(7)}  rss ${ratio(r.rss).padStart(7)}${r.noisy ? '  †' : ''}`,
    );
  }
  for (const p of record.profiles) {
    const top = p.summary.categories
      .slice(0, 3)
      .map((c) => `${c.category.split(':')[0]} ${c.ms.toFixed(0)} ms`)
      .join(', ');
    lines.push(`  profile ${p.command}: ${p.wallMs.toFixed(0)} ms; ${top}`);
  }
  if (record.failures.length) lines.push(`  FAILURES: ${record.failures.length}`);
  return lines.join('\n');
}
