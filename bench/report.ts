/** Results: the JSON record, the Markdown report (docs/benchmarks.md) and the printed summary. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { clientSection, withClientSection } from './client-report.js';
import { END_MARKER as GATE_END, START_MARKER as GATE_START, spliceSection } from './gate-report.js';
import type { ScaleResults } from './scale.js';
import { NOISY_PCT } from './noise.js';
import { READ_WORKLOADS, WORKLOADS, WRITE_WORKLOADS, type HealthFailure, type Measurement, type WorkloadId } from './workloads.js';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  kernel: string;
  free: string;
  node: string;
  postgres: string;
  notaryServer: string;
  loadavgStart: number[];
  /** Share of the machine busy with other work just before the run started, %. */
  busyBeforeStartPct: number;
  loadavgEnd: number[];
}

export interface RunRecord {
  startedAt: string;
  finishedAt: string;
  elapsedS: number;
  command: string;
  /** What was measured: `git describe --dirty` and a digest of the compiled server code. */
  code: { git: string; srcDigest: string };
  settings: { durationS: number; warmupS: number; connections: number[]; phases: string[] };
  /** Time spent waiting for quiet and re-measuring under interference, and how many re-measurements. */
  noise: { budgetS: number; spentS: number; remeasured: number };
  machine: MachineInfo;
  targets: { id: string; label: string; url: string; tls: string | null; note?: string }[];
  measurements: Measurement[];
  /** Resident memory of each server a few seconds after it started, before content or load (kB). */
  idleRssKb?: Record<string, number | null>;
  /** Servers that failed their health check between workloads (their later figures are missing). */
  health?: HealthFailure[];
  ratios: RatioRow[];
  scale: ScaleResults | null;
  notMeasured: string[];
  failures: string[];
}

export interface RatioRow {
  pair: string;
  numerator: string;
  denominator: string;
  workload: WorkloadId;
  connections: number;
  /** Throughput (req/s, or accepted updates/s for writes): > 1 means the numerator serves more. */
  throughput: number | null;
  /** Latency: < 1 means the numerator answers faster. */
  p50: number | null;
  p99: number | null;
  /** Peak RSS of the server process (without its database): < 1 means the numerator uses less. */
  peakRss: number | null;
  /**
   * Server CPU (with its Postgres) per response: < 1 means the numerator does the work with less
   * CPU. Far less sensitive to other load on the machine than throughput or latency.
   */
  cpuPerResponse: number | null;
  /** Either side ran with >= NOISY_PCT % of the machine busy with other work. */
  noisy: boolean;
  /** Either side failed its health check right after the measurement: not to be trusted. */
  invalid?: boolean;
}

export const PAIRS: { pair: string; numerator: string; denominator: string }[] = [
  { pair: 'Signet Postgres / notary-server Postgres (https, production)', numerator: 'signet-pg', denominator: 'notary-pg' },
  { pair: 'Signet PGlite / notary-server memory (https)', numerator: 'signet-pglite', denominator: 'notary-memory' },
  { pair: 'Signet Postgres / bare node (https)', numerator: 'signet-pg', denominator: 'bare' },
  { pair: 'Signet PGlite / bare node (https)', numerator: 'signet-pglite', denominator: 'bare' },
  { pair: 'Signet Postgres / bare node (http)', numerator: 'signet-pg-http', denominator: 'bare-http' },
];

/** The number a workload is judged by: successful responses/s (accepted updates/s for writes). */
export function throughputOf(m: Measurement): number {
  return m.result.okPerSec;
}

const div = (a: number | null | undefined, b: number | null | undefined) =>
  a != null && b != null && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null;

export function computeRatios(measurements: Measurement[]): RatioRow[] {
  const rows: RatioRow[] = [];
  const find = (target: string, workload: WorkloadId, c: number) =>
    measurements.find((m) => m.target === target && m.workload === workload && m.connections === c);
  for (const { pair, numerator, denominator } of PAIRS) {
    for (const workload of Object.keys(WORKLOADS) as WorkloadId[]) {
      for (const c of [...new Set(measurements.map((m) => m.connections))].sort((a, b) => a - b)) {
        const a = find(numerator, workload, c);
        const b = find(denominator, workload, c);
        if (!a || !b) continue;
        rows.push({
          pair,
          numerator,
          denominator,
          workload,
          connections: c,
          throughput: div(throughputOf(a), throughputOf(b)),
          p50: div(a.result.p50, b.result.p50),
          p99: div(a.result.p99, b.result.p99),
          peakRss: div(a.result.server.peakRssKb, b.result.server.peakRssKb),
          cpuPerResponse: div(a.result.server.cpuUsPerResponse, b.result.server.cpuUsPerResponse),
          noisy: a.result.machine.otherPct >= NOISY_PCT || b.result.machine.otherPct >= NOISY_PCT,
          ...(a.invalid || b.invalid ? { invalid: true } : {}),
        });
      }
    }
  }
  return rows;
}

// ---- formatting ----

const num = (v: number | null | undefined, digits = 0) =>
  v == null || !Number.isFinite(v) ? '–' : v.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (v: number | null | undefined) => (v == null || !Number.isFinite(v) ? '–' : v >= 100 ? num(v) : v >= 10 ? num(v, 1) : num(v, 2));
const ratio = (v: number | null) => (v == null ? '–' : `${v.toFixed(2)}×`);
const mb = (kb: number | null | undefined) => (kb == null ? '–' : num(kb / 1024));

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Side by side: by workload, then connections, then server in the order they ran. */
function sideBySide(measurements: Measurement[]): Measurement[] {
  const workloadOrder = Object.keys(WORKLOADS);
  const targetOrder = [...new Set(measurements.map((m) => m.target))];
  return [...measurements].sort(
    (a, b) =>
      workloadOrder.indexOf(a.workload) - workloadOrder.indexOf(b.workload) ||
      a.connections - b.connections ||
      targetOrder.indexOf(a.target) - targetOrder.indexOf(b.target),
  );
}

/** A refusal sample, short: the status and notary's error message when there is one. */
function refusal(sample: string): string {
  const status = sample.split(' ')[0];
  const msg = /"Msg":"([^"]+)"/.exec(sample)?.[1] ?? /"message":"([^"]+)"/.exec(sample)?.[1] ?? sample.slice(4, 100);
  return `${status} ${msg}`.replace(/[|`]/g, ' ');
}

function measurementRows(measurements: Measurement[]): string[][] {
  return sideBySide(measurements).map((m) => {
    const r = m.result;
    const problems = [
      m.invalid ? `**INVALID**: ${m.invalid}` : '',
      r.non2xx ? `${r.non2xx} non-2xx${r.samples[0] ? ` (first: \`${refusal(r.samples[0])}\`)` : ''}` : '',
      r.errors ? `${r.errors} errors` : '',
      r.machine.otherPct >= 10 ? `other load ${num(r.machine.otherPct)}%` : '',
      // One autocannon thread near a full core: the load generator, not the server, sets the pace.
      r.machine.clientPct >= 45 ? `load generator near 1 core (${num(r.machine.clientPct * 2)}%)` : '',
      ...m.notes,
    ].filter(Boolean);
    const kinds =
      m.workload === 'mix-95-5'
        ? `reads p50/p99 ${ms(r.byKind['read']?.p50)}/${ms(r.byKind['read']?.p99)}, writes ${num(r.byKind['write']?.okPerSec)}/s p50/p99 ${ms(r.byKind['write']?.p50)}/${ms(r.byKind['write']?.p99)}`
        : '';
    return [
      m.workload,
      String(m.connections),
      `${m.target} (${m.transport})`,
      num(throughputOf(m)),
      ms(r.p50),
      ms(r.p99),
      mb(r.server.peakRssKb),
      num(r.server.cpuUsPerResponse),
      [kinds, ...problems].filter(Boolean).join('; '),
    ];
  });
}

export function renderMarkdown(record: RunRecord): string {
  const { machine, settings } = record;
  const out: string[] = [];
  out.push('# Benchmarks');
  out.push('');
  out.push('Generated by `npm run bench` (bench/run.ts); rerun it to refresh this page. The raw record of this run is');
  out.push(`\`bench/results/${path.basename(resultFileName(record))}\`.`);
  out.push('');
  out.push('> **Absolute numbers are noisy.** Server, database and load generator share one small machine, and other');
  out.push('> work on it (builds, tests) shows up in the figures (the “other load” notes give the share of the machine busy');
  out.push('> with anything but this run during a measurement). Compare the **ratios** within one run, never absolute');
  out.push('> numbers across runs or machines.');
  out.push('');
  out.push('## Server health in this run');
  out.push('');
  for (const line of healthLines(record)) out.push(line);
  out.push('');
  out.push('## Key ratios');
  out.push('');
  out.push('```text');
  out.push(summary(record).trim());
  out.push('```');
  out.push('');
  out.push('## Run');
  out.push('');
  out.push(`- date: ${record.startedAt} (took ${num(record.elapsedS)} s)`);
  out.push(`- command: \`${record.command}\``);
  out.push(`- code: git \`${record.code.git}\` (uncommitted changes included when it says dirty), compiled src digest \`${record.code.srcDigest}\``);
  out.push(
    `- machine: \`nproc\` = ${machine.nproc}, ${machine.cpuModel}, Linux ${machine.kernel}; ${num(machine.busyBeforeStartPct)}% busy with other work just before the start; load average at start ${machine.loadavgStart.map((v) => v.toFixed(2)).join(' ')}, at end ${machine.loadavgEnd.map((v) => v.toFixed(2)).join(' ')}`,
  );
  out.push(`- node ${machine.node}; Postgres ${machine.postgres}; notary-server ${machine.notaryServer}`);
  out.push(
    `- each measurement: ${settings.warmupS} s warm-up (discarded), then ${settings.durationS} s measured, at ${settings.connections.join(' and ')} connections`,
  );
  out.push('');
  out.push('`free -h`:');
  out.push('');
  out.push('```');
  out.push(machine.free.trimEnd());
  out.push('```');
  out.push('');
  out.push('## Servers');
  out.push('');
  out.push(
    table(
      ['id', 'what', 'URL', 'TLS negotiated with a Node client'],
      record.targets.map((t) => [t.id, t.label + (t.note ? ` (${t.note})` : ''), t.url, t.tls ?? 'plain http']),
    ),
  );
  out.push('');
  out.push('All listen on 127.0.0.1 and use the same RSA-2048 certificate. The read repository `bench/app` was published');
  out.push('to each server with the real `notary` CLI (`init -p`, 20 × `add`, `publish`); the bare server serves the bytes');
  out.push('Signet (Postgres) served for the same paths. Writes go to repositories `bench/writer-N` made with the test');
  out.push('TUF kit with server-held snapshot and timestamp keys (on each server with its own keys): every update is a');
  out.push('client-signed targets.json, version k+1, after which the server signs a new snapshot and timestamp.');
  out.push('Connection *i* writes only to repository *i*, so updates are never out of order.');
  out.push('');
  out.push('## Method');
  out.push('');
  out.push('- Load: autocannon (programmatic, HTTP/1.1 keep-alive, one request in flight per connection) in the bench');
  out.push('  process, so the load generator shares the 2 cores with the server. Latencies are taken per response');
  out.push("  (autocannon's own histogram keeps whole milliseconds only). p50/p99 are over the 2xx responses of the window.");
  out.push('  autocannon is one Node thread: where it nears a full core (noted), the fastest servers (bare node,');
  out.push("  Signet's cached reads) are held back by the load generator, so gaps to them are lower bounds.");
  out.push('- `new-conn-timestamp`: N loops of node:https requests with `agent: false` and `Connection: close`, verifying');
  out.push('  the certificate: a TCP connection and full TLS handshake per request, as the notary and docker clients do.');
  out.push('- `post-update`: throughput is *accepted* updates/s (2xx); `mix-95-5`: each connection sends 19 reads of');
  out.push("  its repository's timestamp.json, then one update (reads and writes also reported apart in the notes).");
  out.push('- Idle RSS is VmRSS of the server process 3 s after it started listening, before any content or load.');
  out.push('  Health: each server answers a health check before its first workload and after every measurement.');
  out.push('- Peak RSS is VmHWM of the server process during the measured window (reset through');
  out.push('  `/proc/PID/clear_refs` before it); the memory of a Postgres server is not included. CPU µs/req is the CPU');
  out.push('  time of the server process plus its Postgres cluster (postmaster and backends), per response.');
  out.push(`- Interference: for every window the bench records how busy the machine was with anything but the server,`);
  out.push(`  its Postgres and the load generator ("other load"). A measurement with ≥ ${NOISY_PCT}% other load is taken again`);
  out.push('  after waiting for a quieter moment, keeping the attempt with less interference, within a time budget');
  out.push(`  (this run: ${num(record.noise.spentS)} s of ${num(record.noise.budgetS)} s spent, ${record.noise.remeasured} re-measured).`);
  out.push("- Postgres clusters (Signet's private one, and the one anchor-up.sh starts for notary-server) both run");
  out.push('  with default settings (fsync on). Signet uses its default pool (10 connections); notary-server its own');
  out.push('  defaults. Both log at level warn.');
  out.push('');
  out.push('## Results');
  out.push('');
  out.push('Throughput is successful (2xx) responses/s (accepted updates/s for `post-update`); latency in ms, over');
  out.push('successful responses only (a fast refusal does not make a server look fast). Refusals are in the notes.');
  out.push('');
  out.push(table(['workload', 'conns', 'server', 'req/s', 'p50', 'p99', 'peak RSS MB', 'CPU µs/req', 'notes'], measurementRows(record.measurements)));
  out.push('');
  out.push(
    'Workloads: ' +
      Object.entries(WORKLOADS)
        .map(([id, title]) => `\`${id}\` = ${title}`)
        .join('; ') +
      '.',
  );
  out.push('');
  out.push('## Ratios');
  out.push('');
  out.push('Throughput ratio > 1: Signet serves more. Latency, RSS and CPU/req ratios < 1: Signet is faster / smaller /');
  out.push(`cheaper. † = one side ran with ≥ ${NOISY_PCT}% of the machine busy with other work: its throughput and latency ratios`);
  out.push('are unreliable; CPU/req (server and database CPU per response) is much less affected and is the better guide there.');
  for (const { pair } of PAIRS) {
    const rows = record.ratios.filter((r) => r.pair === pair);
    if (rows.length === 0) continue;
    out.push('');
    out.push(`### ${pair}`);
    out.push('');
    out.push(
      table(
        ['workload', 'conns', 'throughput', 'p50', 'p99', 'peak RSS', 'CPU/req'],
        rows.map((r) => [
          r.workload,
          String(r.connections) + (r.noisy ? ' †' : '') + (r.invalid ? ' INVALID' : ''),
          ratio(r.throughput),
          ratio(r.p50),
          ratio(r.p99),
          ratio(r.peakRss),
          ratio(r.cpuPerResponse),
        ]),
      ),
    );
  }
  out.push('');
  out.push('## Scale (Signet on Postgres)');
  out.push('');
  const scale = record.scale;
  if (!scale) {
    out.push('Not run (see failures).');
  } else {
    out.push(`Rows bulk-inserted with SQL into a separate database (copies of a valid repository's real bytes under other`);
    out.push('GUNs or versions; the current chain stays valid); Signet restarted after each insert. 2 connections,');
    out.push('same warm-up and duration. Ratios are against the same request on a fresh repository (or a near-empty');
    out.push("changefeed). The copies share their bytes, so Signet's parsed-file cache (keyed by content hash) helps");
    out.push('the 10,000-repository case more than distinct repositories would; the database work is real.');
    out.push(`CPU µs/req is Signet's and its Postgres' CPU per response. † = the row or its baseline ran with ≥ ${NOISY_PCT}% other load.`);
    out.push('');
    out.push(
      table(
        ['measurement', 'req/s', 'p50', 'p99', 'p50 ratio', 'p99 ratio', 'CPU µs/req', 'CPU ratio', 'vs', 'notes'],
        scale.rows.map((row) => {
          const base = row.baseline ? scale.rows.find((b) => b.id === row.baseline)?.result : undefined;
          const bad = row.result.non2xx + row.result.errors ? ` (non-2xx ${row.result.non2xx}, errors ${row.result.errors})` : '';
          const notes = [row.result.machine.otherPct >= 10 ? `other load ${num(row.result.machine.otherPct)}%` : '', row.note ?? ''].filter(Boolean).join('; ');
          const noisy = row.result.machine.otherPct >= NOISY_PCT || (base ? base.machine.otherPct >= NOISY_PCT : false);
          return [
            row.title + bad,
            num(row.result.rps),
            ms(row.result.p50),
            ms(row.result.p99),
            ratio(div(row.result.p50, base?.p50)) + (base && noisy ? ' †' : ''),
            ratio(div(row.result.p99, base?.p99)),
            num(row.result.server.cpuUsPerResponse),
            ratio(div(row.result.server.cpuUsPerResponse, base?.server.cpuUsPerResponse)),
            row.baseline ?? '–',
            notes,
          ];
        }),
      ),
    );
    out.push('');
    out.push(
      'Counts: ' +
        Object.entries(scale.counts)
          .map(([k, v]) => `${k} ${num(v)}`)
          .join('; ') +
        '.',
    );
    if (scale.upload) {
      const u = scale.upload;
      out.push('');
      out.push(`Large upload: a targets.json of ${num(u.targets)} targets (multipart body ${num(u.bodyBytes / 1e6, 1)} MB), validated and`);
      out.push(`stored: HTTP ${u.status} in ${num(u.postMs)} ms; Signet process RSS ${mb(u.rssBeforeKb)} MB before, peak ${mb(u.peakRssKb)} MB`);
      out.push(`during the upload (fresh process); reading it back (GET targets.json, ${num(u.getBytes / 1e6, 1)} MB) took ${num(u.getMs)} ms.`);
    }
    for (const note of scale.notes) {
      out.push('');
      out.push(note);
    }
  }
  out.push('');
  out.push('## Not measured');
  out.push('');
  for (const item of record.notMeasured) out.push(`- ${item}`);
  if (record.failures.length) {
    out.push('');
    out.push('## Failures in this run');
    out.push('');
    for (const f of record.failures) out.push(`- ${f.replace(/\n/g, ' ').slice(0, 600)}`);
  }
  out.push('');
  return out.join('\n');
}

export function resultFileName(record: RunRecord): string {
  return `bench/results/${record.startedAt.replace(/[:.]/g, '-')}.json`;
}

export function writeOutputs(root: string, record: RunRecord): { json: string; markdown: string } {
  const json = path.join(root, resultFileName(record));
  mkdirSync(path.dirname(json), { recursive: true });
  writeFileSync(json, JSON.stringify(record, null, 2) + '\n');
  const markdown = path.join(root, 'docs', 'benchmarks.md');
  mkdirSync(path.dirname(markdown), { recursive: true });
  // The "Deploy gate" and "Client commands" sections come from `npm run bench:gate` and
  // `npm run bench:client`: keep them.
  const old = existsSync(markdown) ? readFileSync(markdown, 'utf8') : '';
  const client = clientSection(old);
  const gateStart = old.indexOf(GATE_START);
  const gateEnd = old.indexOf(GATE_END);
  let page = renderMarkdown(record);
  if (gateStart >= 0 && gateEnd > gateStart) page = spliceSection(page, old.slice(gateStart, gateEnd + GATE_END.length));
  writeFileSync(markdown, client ? withClientSection(page, client) : page);
  return { json, markdown };
}

/** The key ratios, for the terminal. */
export function summary(record: RunRecord): string {
  const lines: string[] = ['', `Summary (ratios; throughput > 1, latency/rss/cpu < 1 favour Signet; † = run under ≥ ${NOISY_PCT}% other load):`];
  for (const { pair } of PAIRS) {
    const rows = record.ratios.filter((r) => r.pair === pair);
    if (rows.length === 0) continue;
    lines.push(`  ${pair}`);
    for (const r of rows) {
      lines.push(
        `    ${r.workload.padEnd(19)} c=${String(r.connections).padEnd(3)} throughput ${ratio(r.throughput).padStart(7)}  p50 ${ratio(r.p50).padStart(7)}  p99 ${ratio(r.p99).padStart(7)}  rss ${ratio(r.peakRss).padStart(7)}  cpu/req ${ratio(r.cpuPerResponse).padStart(7)}${r.noisy ? '  †' : ''}${r.invalid ? '  INVALID (server unhealthy)' : ''}`,
      );
    }
    for (const f of (record.health ?? []).filter((h) => h.target === numeratorOf(pair) || h.target === denominatorOf(pair))) {
      lines.push(
        `    ${f.target} failed its health check ${f.after ? `after ${f.after.workload} c=${f.after.connections}` : 'before the first workload'} (${f.problem.slice(0, 120)}): not measured: ${f.skipped.join(', ') || 'nothing left'}`,
      );
    }
  }
  lines.push(...embeddedSummary(record));
  if (record.scale) {
    lines.push('  Scale (Signet, Postgres; latency and CPU per request vs a fresh repository / small changefeed):');
    for (const row of record.scale.rows.filter((r) => r.baseline)) {
      const base = record.scale.rows.find((b) => b.id === row.baseline)!.result;
      const noisy = row.result.machine.otherPct >= NOISY_PCT || base.machine.otherPct >= NOISY_PCT;
      lines.push(
        `    ${row.id.padEnd(22)} p50 ${ratio(div(row.result.p50, base.p50)).padStart(7)}  p99 ${ratio(div(row.result.p99, base.p99)).padStart(7)}  cpu/req ${ratio(div(row.result.server.cpuUsPerResponse, base.server.cpuUsPerResponse)).padStart(7)}  (${ms(row.result.p50)} / ${ms(row.result.p99)} ms)${noisy ? '  †' : ''}`,
      );
    }
    const u = record.scale.upload;
    if (u) lines.push(`    50k-target upload: HTTP ${u.status} in ${num(u.postMs)} ms, peak RSS ${mb(u.peakRssKb)} MB (from ${mb(u.rssBeforeKb)} MB)`);
  }
  if (record.failures.length) lines.push(`  FAILURES: ${record.failures.length} (see docs/benchmarks.md)`);
  return lines.join('\n');
}

const numeratorOf = (pair: string) => PAIRS.find((p) => p.pair === pair)?.numerator;
const denominatorOf = (pair: string) => PAIRS.find((p) => p.pair === pair)?.denominator;

/** What the page says at its top about the servers' health during the run. */
export function healthLines(record: RunRecord): string[] {
  const failures = record.health ?? [];
  if (failures.length === 0) {
    return [
      'Every server answered its health check (`GET /_notary_server/health`; a served path on the bare server) before its',
      'first workload and after each measurement: no figure below comes from a server that had stopped answering.',
    ];
  }
  const out = [
    '**Not every server stayed healthy.** Each server is health-checked before its first workload and after each',
    "measurement; when a check fails, the measurement just taken is marked INVALID and the server's remaining",
    'workloads are not run (their rows and ratios are missing, not zero):',
    '',
  ];
  for (const f of failures) {
    out.push(
      `- \`${f.target}\` failed ${f.after ? `right after \`${f.after.workload}\` at c=${f.after.connections}` : 'before its first workload'}: ${f.problem.replace(/\n/g, ' ').slice(0, 300)}. Not measured: ${f.skipped.length ? f.skipped.map((x) => `\`${x}\``).join(', ') : 'nothing left'}.`,
    );
  }
  return out;
}

function find(record: RunRecord, target: string, workload: WorkloadId, c: number): Measurement | undefined {
  return record.measurements.find((m) => m.target === target && m.workload === workload && m.connections === c && !m.invalid);
}

function peakOver(record: RunRecord, target: string, workloads: WorkloadId[], c?: number): number | null {
  const peaks = record.measurements
    .filter((m) => m.target === target && workloads.includes(m.workload) && (c === undefined || m.connections === c) && !m.invalid)
    .map((m) => m.result.server.peakRssKb)
    .filter((v): v is number => v != null);
  return peaks.length ? Math.max(...peaks) : null;
}

/** The embedded store's memory and write speed against the references, and Signet on Postgres' memory. */
export function embeddedSummary(record: RunRecord): string[] {
  if (!record.measurements.some((m) => m.target === 'signet-pglite')) return [];
  const idle = record.idleRssKb ?? {};
  const vs = (a: number | null | undefined, b: number | null | undefined, name: string) => {
    const r = div(a, b);
    return r == null ? `${name} –` : `${r.toFixed(2)}× ${name}`;
  };
  const mbOf = (kb: number | null | undefined) => (kb == null ? '–' : `${num(kb / 1024)} MB`);
  const lines = ['  Embedded store (Signet, PGlite), memory and writes against the references (same run):'];
  lines.push(
    `    idle RSS after start        ${mbOf(idle['signet-pglite']).padStart(7)}  (goal ≤ 150 MB; ${vs(idle['signet-pglite'], idle['notary-memory'], 'notary-server memory')}, ${vs(idle['signet-pglite'], idle['signet-pg'], 'Signet Postgres')})`,
  );
  const readPeak = peakOver(record, 'signet-pglite', READ_WORKLOADS);
  const writePeak = peakOver(record, 'signet-pglite', WRITE_WORKLOADS);
  lines.push(
    `    peak RSS, read workloads    ${mbOf(readPeak).padStart(7)}  (goal ≤ 250 MB; ${vs(readPeak, peakOver(record, 'notary-memory', READ_WORKLOADS), 'notary-server memory')})`,
  );
  lines.push(
    `    peak RSS, write workloads   ${mbOf(writePeak).padStart(7)}  (goal ≤ 250 MB; ${vs(writePeak, peakOver(record, 'notary-memory', WRITE_WORKLOADS), 'notary-server memory')})`,
  );
  for (const c of record.settings.connections) {
    const own = find(record, 'signet-pglite', 'post-update', c);
    const mem = find(record, 'notary-memory', 'post-update', c);
    const pg = find(record, 'notary-pg', 'post-update', c);
    const noisy = [own, mem, pg].some((m) => m && m.result.machine.otherPct >= NOISY_PCT);
    lines.push(
      `    accepted updates/s, c=${String(c).padEnd(3)}   ${num(own ? throughputOf(own) : null).padStart(7)}  (goal ≥ 0.5× memory, ≥ 1× Postgres: ${vs(own && throughputOf(own), mem && throughputOf(mem), 'notary-server memory')}, ${vs(own && throughputOf(own), pg && throughputOf(pg), 'notary-server Postgres')})${noisy ? '  †' : ''}`,
    );
  }
  const maxC = Math.max(...record.settings.connections);
  const pgPeak = peakOver(record, 'signet-pg', READ_WORKLOADS, maxC);
  const notaryPgPeak = peakOver(record, 'notary-pg', READ_WORKLOADS, maxC);
  lines.push(
    `  Signet Postgres peak RSS, reads at c=${maxC}: ${mbOf(pgPeak)} (goal ≤ 2× notary-server Postgres: ${vs(pgPeak, notaryPgPeak, 'notary-server Postgres')})`,
  );
  return lines;
}
