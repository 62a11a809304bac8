/**
 * The record of one `npm run bench:gate` run, its summary for the terminal, and its section of
 * docs/benchmarks.md: written between the `gate-bench` markers, so that a rerun replaces only
 * that section (appended at the end when the page has no such section yet).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LoadResult } from './load.js';
import { NOISY_PCT } from './noise.js';

export const START_MARKER = '<!-- gate-bench:start -->';
export const END_MARKER = '<!-- gate-bench:end -->';

export interface ThroughputRow {
  server: 'gate' | 'bare';
  endpoint: string;
  round: number;
  result: LoadResult;
  note?: string;
}

export interface ColdSample {
  /** Wall time of the POST /validate, as the client saw it. */
  ms: number;
  /** CPU of the gate process (all threads) from just before the request to 50 ms after the answer. */
  cpuMs: number;
  /** The same from /proc/PID/stat (10 ms clock ticks): a coarse cross-check. */
  cpuTicksMs: number;
  images: number;
  /** Requests the trust server counted meanwhile (its /metrics scrapes left out). */
  requests: number;
  /** Those requests from the trust server's request log: METHOD PATH STATUS. */
  logged: string[];
}

export interface ColdCase {
  id: 'fresh-process' | 'warm-process' | 'cached' | 'one-repository';
  title: string;
  runs: number;
  msMedian: number;
  msMin: number;
  msMax: number;
  cpuMsMedian: number;
  cpuMsPerImage: number;
  requestsMedian: number;
  requestsPerImage: number;
  requestsPerRepository: number;
  samples: ColdSample[];
}

export interface GateRecord {
  startedAt: string;
  finishedAt: string;
  elapsedS: number;
  command: string;
  code: { git: string; srcDigest: string };
  settings: { durationS: number; warmupS: number; rounds: number; connections: number; coldRuns: number; noiseBudgetS: number };
  noise: { spentS: number; remeasured: number };
  machine: {
    nproc: number;
    cpuModel: string;
    kernel: string;
    node: string;
    free: string;
    loadavgStart: number[];
    busyBeforeStartPct: number;
    loadavgEnd: number[];
  };
  servers: { gate: { url: string; tls: string }; bare: { url: string; tls: string } };
  trustServer: { url: string; label: string };
  trustData: { repositories: Record<string, string[]>; signer: string; commands: string[]; rootCertificates: number };
  reviewBytes: { threeRepositories: number; oneRepository: number };
  answers: { validate: string; mutate: string };
  throughput: ThroughputRow[];
  underLoad: {
    allowedDecisions: number;
    denied: number;
    trustRequestsForFirstFetch: number;
    trustRequestsDuringLoad: number;
    gatePeakRssKb: number | null;
  };
  cold: ColdCase[];
  coldMachineBusyPct: number;
}

// ---- figures ----

const GOAL_THROUGHPUT = 0.5;
const GOAL_REQUESTS_PER_IMAGE = 5;
const GOAL_CPU_MS_PER_IMAGE = 2;

const median = (values: number[]): number => {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export interface Medians {
  rps: number;
  p50: number;
  p99: number;
  cpuUsPerRequest: number;
  peakRssKb: number;
  maxOtherPct: number;
}

export function mediansOf(rows: ThroughputRow[], server: 'gate' | 'bare', endpoint: string): Medians {
  const r = rows.filter((x) => x.server === server && x.endpoint === endpoint).map((x) => x.result);
  return {
    rps: median(r.map((x) => x.rps)),
    p50: median(r.map((x) => x.p50)),
    p99: median(r.map((x) => x.p99)),
    cpuUsPerRequest: median(r.map((x) => x.server.cpuUsPerResponse ?? NaN)),
    peakRssKb: Math.max(...r.map((x) => x.server.peakRssKb ?? NaN)),
    maxOtherPct: Math.max(...r.map((x) => x.machine.otherPct)),
  };
}

export interface Ratios {
  throughput: number;
  p50: number;
  p99: number;
  cpuPerRequest: number;
  /** Gate ÷ bare throughput of each round, in round order. */
  perRound: number[];
}

export function ratiosOf(rows: ThroughputRow[], endpoint: string): Ratios {
  const g = mediansOf(rows, 'gate', endpoint);
  const b = mediansOf(rows, 'bare', endpoint);
  const rounds = [...new Set(rows.map((r) => r.round))].sort((x, y) => x - y);
  return {
    throughput: g.rps / b.rps,
    p50: g.p50 / b.p50,
    p99: g.p99 / b.p99,
    cpuPerRequest: g.cpuUsPerRequest / b.cpuUsPerRequest,
    perRound: rounds.map((round) => {
      const of = (server: string) => rows.find((r) => r.round === round && r.server === server && r.endpoint === endpoint)?.result.rps ?? NaN;
      return of('gate') / of('bare');
    }),
  };
}

const ENDPOINTS = ['validate', 'mutate'];

// ---- formatting ----

const num = (v: number | null | undefined, digits = 0) =>
  v == null || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (v: number) => (!Number.isFinite(v) ? '–' : v >= 100 ? num(v) : v >= 10 ? num(v, 1) : num(v, 2));
const ratio = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–');
const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function coldCase(record: GateRecord, id: ColdCase['id']): ColdCase | undefined {
  return record.cold.find((c) => c.id === id);
}

/** What each request of one repository's cold fetch was for. */
function requestKind(line: string): string {
  const [, p = '', status = ''] = line.split(' ');
  const file = p.split('/_trust/tuf/')[1] ?? p;
  let kind: string;
  if (/^\d+\.root\.json$/.test(file)) kind = status === '404' ? 'root, next version (probe)' : `root, version ${file.split('.')[0]}`;
  else if (file === 'root.json') kind = 'root, current';
  else if (file.startsWith('timestamp')) kind = 'timestamp';
  else if (file.startsWith('snapshot')) kind = 'snapshot';
  else if (/^targets\.[0-9a-f]+\.json$|^targets\.json$/.test(file)) kind = 'targets';
  else if (file.startsWith('targets/')) kind = `delegation ${file.split('.')[0]}`;
  else kind = file;
  return `${kind} (HTTP ${status})`;
}

export function renderSection(record: GateRecord, jsonFile: string): string {
  const out: string[] = [];
  const { settings, machine } = record;
  const images = Object.values(record.trustData.repositories).reduce((a, t) => a + t.length, 0);
  out.push(START_MARKER);
  out.push('');
  out.push('## Deploy gate');
  out.push('');
  out.push(`Generated by \`npm run bench:gate\` (bench/gate.ts) on ${record.startedAt.slice(0, 10)}; rerun it to refresh this section`);
  out.push(`(only the text between the \`gate-bench\` markers is replaced). Raw record: \`${jsonFile}\`.`);
  out.push('');
  out.push('### Ratios');
  out.push('');
  out.push(`\`signet gate\` ÷ a bare node:https server answering the same AdmissionReview with fixed bytes; medians of ${settings.rounds} rounds,`);
  out.push(`${settings.connections} connections, HTTPS on loopback, trust data cached. Throughput > 1 and latency or CPU < 1 would favour the gate.`);
  out.push('');
  const ratios = Object.fromEntries(ENDPOINTS.map((e) => [e, ratiosOf(record.throughput, e)]));
  out.push(
    table(
      ['gate ÷ bare', 'POST /validate', 'POST /mutate', 'goal'],
      [
        [
          'decisions/s',
          ratio(ratios['validate']!.throughput),
          ratio(ratios['mutate']!.throughput),
          `≥ ${GOAL_THROUGHPUT}×: ${verdict(ENDPOINTS.every((e) => ratios[e]!.throughput >= GOAL_THROUGHPUT))}`,
        ],
        ['decisions/s, each round', ...ENDPOINTS.map((e) => ratios[e]!.perRound.map(ratio).join(', ')), ''],
        ['p50 latency', ratio(ratios['validate']!.p50), ratio(ratios['mutate']!.p50), ''],
        ['p99 latency', ratio(ratios['validate']!.p99), ratio(ratios['mutate']!.p99), ''],
        ['server CPU per request', ratio(ratios['validate']!.cpuPerRequest), ratio(ratios['mutate']!.cpuPerRequest), ''],
      ],
    ),
  );
  out.push('');
  for (const e of ENDPOINTS) {
    const g = mediansOf(record.throughput, 'gate', e);
    const b = mediansOf(record.throughput, 'bare', e);
    out.push(
      `- \`POST /${e}\`: the gate ${num(g.rps)} decisions/s (${num(g.rps * 3)} images/s), p50 ${ms(g.p50)} ms, p99 ${ms(g.p99)} ms, ${num(g.cpuUsPerRequest)} µs CPU per decision; the bare server ${num(b.rps)}/s, p50 ${ms(b.p50)} ms, p99 ${ms(b.p99)} ms, ${num(b.cpuUsPerRequest)} µs.`,
    );
  }
  out.push('');
  const fresh = coldCase(record, 'fresh-process');
  const warm = coldCase(record, 'warm-process');
  const oneRepo = coldCase(record, 'one-repository');
  out.push('### Cold decision');
  out.push('');
  out.push(`One \`POST /validate\` of the 3-container Pod (3 repositories) with nothing cached; the trust server is ${record.trustServer.label},`);
  out.push(`started as the harness starts Signet (bench/servers.ts), HTTPS on loopback. Medians of ${fresh?.runs ?? 0} fresh gate processes; the connection`);
  out.push('to the gate was open before the timed request.');
  out.push('');
  out.push(
    table(
      ['case', 'runs', 'time ms, median (min–max)', 'gate CPU ms per decision', 'CPU ms per image', 'requests to the trust server per image', 'per repository'],
      record.cold.map((c) => [
        c.title,
        String(c.runs),
        `${ms(c.msMedian)} (${ms(c.msMin)}–${ms(c.msMax)})`,
        ms(c.cpuMsMedian),
        ms(c.cpuMsPerImage),
        num(c.requestsPerImage, 2),
        c.id === 'cached' ? '–' : num(c.requestsPerRepository, 1),
      ]),
    ),
  );
  out.push('');
  if (fresh && warm) {
    const req = Math.max(fresh.requestsPerImage, warm.requestsPerImage);
    out.push(
      `Goals: ≤ ${GOAL_REQUESTS_PER_IMAGE} requests per image: ${verdict(req <= GOAL_REQUESTS_PER_IMAGE)} (${num(req, 2)}, one image per repository; ${num(oneRepo?.requestsPerImage, 2)} when the three images share a repository).`,
    );
    out.push(
      `≤ ${GOAL_CPU_MS_PER_IMAGE} ms of gate CPU per image: ${verdict(warm.cpuMsPerImage <= GOAL_CPU_MS_PER_IMAGE)} in a gate that has decided before (${ms(warm.cpuMsPerImage)} ms), ${verdict(fresh.cpuMsPerImage <= GOAL_CPU_MS_PER_IMAGE)} for the first decision of a new process (${ms(fresh.cpuMsPerImage)} ms, which includes compiling the code on first use).`,
    );
    out.push('');
    const sample = fresh.samples[0];
    if (sample) {
      const repo = sample.logged[0]?.split(' ')[1]?.split('/_trust/')[0] ?? '';
      const mine = sample.logged.filter((l) => l.split(' ')[1]?.startsWith(`${repo}/_trust/`));
      out.push(`The requests for one repository (\`${repo.replace(/^\/v2\//, '')}\`) in the first cold decision, in order:`);
      out.push('');
      out.push(
        table(
          ['#', 'request', 'for'],
          mine.map((l, i) => [String(i + 1), `\`${l.split(' ').slice(0, 2).join(' ')}\``, requestKind(l)]),
        ),
      );
      out.push('');
      const probes = mine.filter((l) => /\/\d+\.root\.json 404$/.test(l)).length;
      const used = `targets/${record.trustData.signer}`;
      const unused = mine
        .map((l) => (l.split(' ')[1] ?? '').split('/_trust/tuf/')[1] ?? '')
        .filter((f) => f.startsWith('targets/'))
        .map((f) => f.split('.')[0]!)
        .filter((role) => role !== used);
      const notes: string[] = [];
      if (probes) notes.push(`${probes} is a probe for a next root version that answers 404 (the walk from \`1.root.json\` stops there)`);
      if (unused.length)
        notes.push(
          `${unused.length} fetches ${unused.map((u) => `\`${u}\``).join(', ')}, which the rule (signers: [${record.trustData.signer}]) does not use: the client loads every delegation the snapshot lists`,
        );
      if (notes.length) out.push(`Of these, ${notes.join('; ')}.`);
      out.push('');
    }
  }
  out.push('### Throughput: raw numbers');
  out.push('');
  out.push(
    `Each window: ${settings.warmupS} s warm-up (discarded), then ${settings.durationS} s measured, ${settings.connections} connections, one request in flight per connection.`,
  );
  out.push(
    `Decisions/s are 200 responses/s; every one was an allowed review (the gate's decision counter: ${num(record.underLoad.allowedDecisions)} allowed, ${record.underLoad.denied} denied).`,
  );
  out.push(`One decision is 3 images. Latency in ms. Server CPU per request is the server process's CPU over the window (10 ms ticks), per response.`);
  out.push('');
  const rows: string[][] = [];
  for (const e of ENDPOINTS) {
    for (const server of ['gate', 'bare'] as const) {
      for (const r of record.throughput.filter((x) => x.endpoint === e && x.server === server).sort((a, b) => a.round - b.round)) {
        const res = r.result;
        const bad = res.non2xx + res.errors ? `non-2xx ${res.non2xx}, errors ${res.errors}` : '';
        const noisy = res.machine.otherPct >= NOISY_PCT ? ' †' : '';
        rows.push([
          `/${e}`,
          server,
          String(r.round),
          num(res.rps),
          ms(res.p50),
          ms(res.p99),
          num(res.server.cpuUsPerResponse),
          num((res.server.peakRssKb ?? NaN) / 1024),
          `${num(res.machine.otherPct)}%${noisy}`,
          [bad, r.note ?? ''].filter(Boolean).join('; '),
        ]);
      }
      const m = mediansOf(record.throughput, server, e);
      rows.push([
        `/${e}`,
        `**${server}, median**`,
        '',
        `**${num(m.rps)}**`,
        `**${ms(m.p50)}**`,
        `**${ms(m.p99)}**`,
        `**${num(m.cpuUsPerRequest)}**`,
        '',
        '',
        '',
      ]);
    }
  }
  out.push(table(['endpoint', 'server', 'round', 'decisions/s', 'p50', 'p99', 'CPU µs/req', 'peak RSS MB', 'other load', 'notes'], rows));
  out.push('');
  out.push(`† = ≥ ${NOISY_PCT}% of the machine busy with other work during the window (its figures are less reliable).`);
  out.push(
    `While under load the gate made ${record.underLoad.trustRequestsDuringLoad} requests to the trust server (background refreshes; the first fetch took ${record.underLoad.trustRequestsForFirstFetch}).`,
  );
  out.push('');
  out.push('### Method');
  out.push('');
  out.push(
    `- Trust data: ${images} signed tags in ${Object.keys(record.trustData.repositories).length} repositories (${Object.entries(record.trustData.repositories)
      .map(([g, t]) => `\`${g}\` ${t.join(', ')}`)
      .join('; ')}),`,
  );
  out.push(
    `  published to Signet with \`signet trust\` (${record.trustData.commands.length} commands: \`key generate\`, \`signer add\`, \`sign --digest --size\`); signer \`${record.trustData.signer}\` (targets/${record.trustData.signer} and targets/releases, as docker does).`,
  );
  out.push(
    `  The policy pins the root key with the root certificate of each repository's \`1.root.json\` (${record.trustData.rootCertificates} distinct), requires signer \`${record.trustData.signer}\` and pins digests (\`pinDigest\`), so \`/mutate\` answers a 3-operation JSONPatch.`,
  );
  out.push(
    `- The review: an AdmissionReview v1 of a Pod CREATE (${num(record.reviewBytes.threeRepositories)} bytes: 1 init container and 2 containers, 3 repositories); the same bytes to both servers.`,
  );
  out.push(
    '- The gate: `node dist/src/cli/main.js gate --policy … --tls-cert … --tls-key …`, its own process at the default log level (one JSON line per image decision, to /dev/null under load and to a file in the cold runs).',
  );
  out.push(
    '- The bare server (bench/gate-bare-server.ts): node:https, its own process, same certificate and server options as the gate; it reads the whole body and answers the bytes the gate answered to the same review (same headers), without parsing anything.',
  );
  out.push(
    `- Load: autocannon in the bench process (shares the ${machine.nproc} cores with the server), latencies per response; each round runs both servers for /validate then /mutate, the order of the servers alternating between rounds. A window with ≥ ${NOISY_PCT}% other load is measured again after a quieter moment, within a ${settings.noiseBudgetS} s budget (this run: ${num(record.noise.spentS)} s spent, ${record.noise.remeasured} re-measured).`,
  );
  out.push(
    '- Cold decisions: a new `signet gate` process per run; `GET /healthz` opens the connection, then the timed `POST /validate`. Then the policy file is rewritten with a new trust source name (the gate reloads it and starts that source with an empty cache and a new connection to the trust server) and the same review is timed again (warm process), then once more (cached), then after another reload a Pod with three tags of one repository.',
  );
  out.push(
    "- Gate CPU: the sum over the gate's threads of `/proc/PID/task/TID/schedstat` (ns), from just before the request to 50 ms after the answer (the decision's log lines included). Requests: Signet's `signet_http_requests_total` counter (its /metrics scrapes left out), the paths from its request log (`SIGNET_LOG_REQUESTS=all`).",
  );
  out.push('');
  out.push('### Machine');
  out.push('');
  out.push(
    `- ${record.startedAt} to ${record.finishedAt} (${num(record.elapsedS)} s); \`${record.command}\`; code: git \`${record.code.git}\`, compiled src digest \`${record.code.srcDigest}\``,
  );
  out.push(
    `- \`nproc\` = ${machine.nproc}, ${machine.cpuModel}, Linux ${machine.kernel}, node ${machine.node}; ${num(machine.busyBeforeStartPct)}% busy with other work just before the start; load average ${machine.loadavgStart.map((v) => v.toFixed(2)).join(' ')} at the start, ${machine.loadavgEnd.map((v) => v.toFixed(2)).join(' ')} at the end; machine ${num(record.coldMachineBusyPct)}% busy (everything) during the cold runs`,
  );
  out.push(`- TLS negotiated with a Node client: gate ${record.servers.gate.tls}; bare ${record.servers.bare.tls}`);
  out.push('');
  out.push(END_MARKER);
  return out.join('\n');
}

/** Replace the section between the markers, or append it. */
export function spliceSection(page: string, section: string): string {
  const start = page.indexOf(START_MARKER);
  const end = page.indexOf(END_MARKER);
  if (start >= 0 && end > start) return page.slice(0, start) + section + page.slice(end + END_MARKER.length);
  return `${page.replace(/\s*$/, '')}\n\n${section}\n`;
}

export function writeGateOutputs(root: string, record: GateRecord): { json: string; markdown: string } {
  const jsonRel = `bench/results/gate-${record.startedAt.replace(/[:.]/g, '-')}.json`;
  const json = path.join(root, jsonRel);
  mkdirSync(path.dirname(json), { recursive: true });
  writeFileSync(json, JSON.stringify(record, null, 2) + '\n');
  const markdown = path.join(root, 'docs', 'benchmarks.md');
  const page = existsSync(markdown) ? readFileSync(markdown, 'utf8') : '# Benchmarks\n';
  writeFileSync(markdown, spliceSection(page, renderSection(record, jsonRel)));
  return { json, markdown };
}

export function gateSummary(record: GateRecord): string {
  const lines = ['', 'Summary (gate ÷ bare, medians):'];
  for (const e of ENDPOINTS) {
    const r = ratiosOf(record.throughput, e);
    const g = mediansOf(record.throughput, 'gate', e);
    const b = mediansOf(record.throughput, 'bare', e);
    lines.push(
      `  POST /${e.padEnd(8)} throughput ${ratio(r.throughput)} (${num(g.rps)} vs ${num(b.rps)}/s; rounds ${r.perRound.map(ratio).join(' ')})  p50 ${ratio(r.p50)}  p99 ${ratio(r.p99)}  cpu/req ${ratio(r.cpuPerRequest)}`,
    );
  }
  for (const c of record.cold) {
    lines.push(
      `  ${c.id.padEnd(15)} ${ms(c.msMedian)} ms (${ms(c.msMin)}–${ms(c.msMax)}), cpu ${ms(c.cpuMsMedian)} ms = ${ms(c.cpuMsPerImage)} ms/image, ${num(c.requestsPerImage, 2)} requests/image`,
    );
  }
  return lines.join('\n');
}
