/** The comparison workloads, run against one server at a time, its health checked between them. */
import { existsSync } from 'node:fs';
import type { ReadPaths, WriterRepo } from './content.js';
import { HttpClient } from './http.js';
import { drainMs, getPlan, runConnectionPerRequest, runPlan, sleep, type LoadResult, type LoadSettings, type Plan, type PlannedRequest } from './load.js';
import { measureWithRetry, type NoiseGuard } from './noise.js';
import type { Target } from './servers.js';

export const WORKLOADS = {
  'get-timestamp': 'GET timestamp.json',
  'get-root': 'GET root.json',
  'get-targets': 'GET targets.json',
  'get-checksum': 'GET targets.<sha256>.json',
  'post-update': 'POST targets update (server signs snapshot + timestamp)',
  'mix-95-5': '95% GET timestamp.json / 5% POST update',
  'new-conn-timestamp': 'GET timestamp.json, new connection per request (Connection: close)',
} as const;

export type WorkloadId = keyof typeof WORKLOADS;
export const READ_WORKLOADS: WorkloadId[] = ['get-timestamp', 'get-root', 'get-targets', 'get-checksum'];
export const WRITE_WORKLOADS: WorkloadId[] = ['post-update', 'mix-95-5'];

export interface Measurement {
  target: string;
  label: string;
  kind: Target['kind'];
  store: Target['store'];
  transport: 'https' | 'http';
  workload: WorkloadId;
  connections: number;
  result: LoadResult;
  notes: string[];
  /** Why this figure is not to be trusted: the server failed its health check right after it. */
  invalid?: string;
}

/** A server that failed its health check between workloads, and what was left unmeasured because of it. */
export interface HealthFailure {
  target: string;
  /** The workload (and connections) after which the check failed; null = before the first. */
  after: { workload: WorkloadId; connections: number } | null;
  problem: string;
  /** Workloads (with connections) not run because the server was down. */
  skipped: string[];
}

/**
 * Why the server cannot be measured, or null when it answers its health check (GET
 * /_notary_server/health on Signet and notary-server, a served path on the bare server) in time.
 */
export async function healthProblem(target: Target, probePath: string, ca: Buffer): Promise<string | null> {
  if (!existsSync(`/proc/${target.pid}`)) return `process ${target.pid} has exited`;
  const client = new HttpClient(target.url, ca);
  try {
    const res = await client.request('GET', probePath, { timeoutMs: 10_000 });
    return res.status === 200 ? null : `health check answered ${res.status}: ${res.body.toString().slice(0, 200)}`;
  } catch (e) {
    return `health check failed: ${(e as Error).message}`;
  } finally {
    client.close();
  }
}

export interface PreparedTarget {
  target: Target;
  reads: ReadPaths;
  /** Repositories with server-held snapshot keys, one per connection; absent = no writes. */
  writers?: WriterRepo[];
}

/** Pre-signed updates per run: enough for the fastest servers seen here; more are signed on demand. */
const POST_BUDGET = 6000;
const MIX_BUDGET = 1500;

function updateRequest(repo: WriterRepo): PlannedRequest {
  const u = repo.next();
  return { method: 'POST', path: repo.updatePath(), body: u.body, headers: { 'Content-Type': u.contentType }, kind: 'write' };
}

/** Connection i sends version k+1, k+2, … of its own repository: never out of order. */
function postPlan(writers: WriterRepo[]): Plan {
  return (i) => {
    const repo = writers[i % writers.length]!;
    return () => updateRequest(repo);
  };
}

/** Connection i: 19 reads of its repository's timestamp.json, then one update, and again. */
function mixPlan(writers: WriterRepo[]): Plan {
  return (i) => {
    const repo = writers[i % writers.length]!;
    const read: PlannedRequest = { method: 'GET', path: repo.timestampPath(), kind: 'read' };
    let n = 0;
    return () => (++n % 20 === 0 ? updateRequest(repo) : read);
  };
}

function presign(writers: WriterRepo[], connections: number, budget: number): void {
  const per = Math.ceil(budget / connections);
  for (const repo of writers.slice(0, connections)) {
    if (repo.presigned < per) repo.presign(per - repo.presigned);
  }
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

export function describe(m: Measurement): string {
  const r = m.result;
  const rate = m.workload === 'post-update' ? `${r.okPerSec.toFixed(0)} accepted/s` : `${r.rps.toFixed(0)} req/s`;
  const bad = r.non2xx + r.errors > 0 ? `  non-2xx ${r.non2xx} errors ${r.errors}` : '';
  const rss = r.server.peakRssKb ? `  rss ${(r.server.peakRssKb / 1024).toFixed(0)} MB` : '';
  const other = r.machine.otherPct >= 10 ? `  (other load ${r.machine.otherPct.toFixed(0)}%)` : '';
  return `${m.target.padEnd(18)} ${m.workload.padEnd(19)} c=${String(m.connections).padEnd(3)} ${rate.padStart(18)}  p50 ${ms(r.p50)} ms  p99 ${ms(r.p99)} ms${rss}${bad}${other}`;
}

/** Run `workloads` at each connection count against one prepared server. */
export async function runWorkloads(
  prepared: PreparedTarget,
  workloads: WorkloadId[],
  connectionCounts: number[],
  settings: LoadSettings,
  log: (m: Measurement) => void,
  guard?: NoiseGuard,
  health?: { failures: HealthFailure[]; say: (line: string) => void },
): Promise<Measurement[]> {
  const { target, reads, writers } = prepared;
  const probePath = target.kind === 'bare' ? reads.timestamp : '/_notary_server/health';
  let down: HealthFailure | null = null;
  const checkHealth = async (after: HealthFailure['after']): Promise<string | null> => {
    if (!health) return null;
    const problem = await healthProblem(target, probePath, settings.ca);
    if (problem) {
      down = { target: target.id, after, problem, skipped: [] };
      health.failures.push(down);
      health.say(
        `${target.id}: UNHEALTHY${after ? ` after ${after.workload} c=${after.connections}` : ''}: ${problem}; its remaining workloads are not measured`,
      );
    }
    return problem;
  };
  await checkHealth(null);
  const pids = { pid: target.pid, dbPid: target.dbPid ?? null };
  const once = async (workload: WorkloadId, connections: number): Promise<LoadResult> => {
    switch (workload) {
      case 'get-timestamp':
        return runPlan(target.url, connections, getPlan(reads.timestamp), settings, pids);
      case 'get-root':
        return runPlan(target.url, connections, getPlan(reads.root), settings, pids);
      case 'get-targets':
        return runPlan(target.url, connections, getPlan(reads.targets), settings, pids);
      case 'get-checksum':
        return runPlan(target.url, connections, getPlan(reads.byChecksum), settings, pids);
      case 'post-update': {
        presign(writers!, connections, POST_BUDGET);
        const result = await runPlan(target.url, connections, postPlan(writers!), settings, pids, true);
        await sleep(drainMs(result.p99));
        return result;
      }
      case 'mix-95-5': {
        presign(writers!, connections, MIX_BUDGET);
        const result = await runPlan(target.url, connections, mixPlan(writers!), settings, pids, true);
        await sleep(drainMs(result.byKind['write']?.p99 ?? result.p99));
        return result;
      }
      case 'new-conn-timestamp':
        return runConnectionPerRequest(target.url, reads.timestamp, connections, settings, pids);
    }
  };
  const out: Measurement[] = [];
  for (const workload of workloads) {
    if (WRITE_WORKLOADS.includes(workload) && !writers) continue;
    for (const connections of connectionCounts) {
      if (down) {
        (down as HealthFailure).skipped.push(`${workload} c=${connections}`);
        continue;
      }
      const notes: string[] = [];
      const before = writers?.reduce((a, w) => a + w.signedDuringRun, 0) ?? 0;
      const { result, note } = await measureWithRetry(guard, `${target.id} ${workload} c=${connections}`, () => once(workload, connections));
      if (note) notes.push(note);
      const signed = (writers?.reduce((a, w) => a + w.signedDuringRun, 0) ?? 0) - before;
      if (signed > 0) notes.push(`${signed} updates were signed during the run (pre-signed ones ran out)`);
      const m: Measurement = {
        target: target.id,
        label: target.label,
        kind: target.kind,
        store: target.store,
        transport: target.url.startsWith('https:') ? 'https' : 'http',
        workload,
        connections,
        result,
        notes,
      };
      const problem = await checkHealth({ workload, connections });
      if (problem) m.invalid = `the server failed its health check right after this measurement (${problem})`;
      log(m);
      out.push(m);
    }
  }
  return out;
}
