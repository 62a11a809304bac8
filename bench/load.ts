/**
 * Load generation: autocannon (programmatic, in this process) for keep-alive workloads, and a
 * small bounded loop of node:http(s) requests with `agent: false` and `Connection: close` for
 * the new-connection-per-request workload (a full TLS handshake each time, as the notary and
 * docker clients do). Latencies are recorded per response from autocannon's `response` event
 * in floating-point milliseconds: autocannon's own histogram keeps whole milliseconds only,
 * too coarse for loopback reads.
 */
import autocannon from 'autocannon';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import os from 'node:os';
import { machineBusyMs, ProcessProbe } from './proc.js';

export interface LoadSettings {
  durationS: number;
  warmupS: number;
  ca: Buffer;
}

export interface LatencyStats {
  responses: number;
  ok: number;
  okPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface LoadResult extends LatencyStats {
  connections: number;
  durationS: number;
  /** Successful (2xx) responses per second; failures are counted in non2xx / errors. */
  rps: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** Per request kind (e.g. read/write in the mix). */
  byKind: Record<string, LatencyStats>;
  /**
   * Server process: peak RSS during the measured window (kB; the database server's memory is not
   * included), CPU used by it and by its database (ms), and both together per response (µs).
   */
  server: { peakRssKb: number | null; peakSinceStart: boolean; cpuMs: number | null; dbCpuMs: number | null; cpuUsPerResponse: number | null };
  /**
   * The machine during the window, % of all cores: busy, of which the load generator (this
   * process), the server (with its database), and anything else (interference).
   */
  machine: { busyPct: number; clientPct: number; serverPct: number; otherPct: number };
  samples: string[];
}

export interface PlannedRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: Buffer;
  headers?: Record<string, string>;
  kind: string;
}

/** For client (connection) number i, a function giving its next request. */
export type Plan = (clientIndex: number) => () => PlannedRequest;

/** Counts over all responses; latencies over successful (2xx) responses only. */
export function stats(okLatencies: number[], responses: number, durationS: number): LatencyStats {
  const sorted = Float64Array.from(okLatencies).sort();
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]! : NaN);
  const sum = okLatencies.reduce((a, b) => a + b, 0);
  return {
    responses,
    ok: okLatencies.length,
    okPerSec: okLatencies.length / durationS,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    mean: okLatencies.length ? sum / okLatencies.length : NaN,
  };
}

class Recorder {
  responses = 0;
  readonly okLatencies: number[] = [];
  readonly kinds = new Map<string, { responses: number; okLatencies: number[] }>();
  statusCodes: Record<string, number> = {};
  samples: string[] = [];

  record(kind: string, status: number, ms: number): void {
    this.responses++;
    const good = status >= 200 && status < 300;
    if (good) this.okLatencies.push(ms);
    this.statusCodes[status] = (this.statusCodes[status] ?? 0) + 1;
    let k = this.kinds.get(kind);
    if (!k) this.kinds.set(kind, (k = { responses: 0, okLatencies: [] }));
    k.responses++;
    if (good) k.okLatencies.push(ms);
  }

  sample(text: string): void {
    if (this.samples.length < 5) this.samples.push(text.slice(0, 300));
  }

  result(connections: number, durationS: number, errors: number, timeouts: number, window: Pick<LoadResult, 'server' | 'machine'>): LoadResult {
    const byKind: Record<string, LatencyStats> = {};
    for (const [kind, k] of this.kinds) byKind[kind] = stats(k.okLatencies, k.responses, durationS);
    const overall = stats(this.okLatencies, this.responses, durationS);
    return {
      ...overall,
      connections,
      durationS,
      rps: overall.okPerSec,
      non2xx: this.responses - this.okLatencies.length,
      errors,
      timeouts,
      statusCodes: this.statusCodes,
      byKind,
      ...window,
      samples: this.samples,
    };
  }
}

/** The server process under load, and the postmaster of its database when it has one. */
export interface ServerPids {
  pid: number;
  dbPid?: number | null;
}

function measureWindow(pids: ServerPids | undefined) {
  const probe = pids ? new ProcessProbe(pids.pid, pids.dbPid) : null;
  probe?.start();
  const cpu0 = process.cpuUsage();
  const machine0 = machineBusyMs();
  const t0 = process.hrtime.bigint();
  return (responses: number): { server: LoadResult['server']; machine: LoadResult['machine'] } => {
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    const clientMs = (cpu.user + cpu.system) / 1000;
    const machineMs = machineBusyMs() - machine0;
    const s = probe?.finish();
    const serverMs = (s?.cpuMs ?? 0) + (s?.dbCpuMs ?? 0);
    const capacity = wallMs * os.availableParallelism();
    return {
      server: {
        peakRssKb: s?.peakRssKb ?? null,
        peakSinceStart: s?.peakSinceStart ?? true,
        cpuMs: s?.cpuMs ?? null,
        dbCpuMs: s?.dbCpuMs ?? null,
        cpuUsPerResponse: s?.cpuMs != null && responses > 0 ? (serverMs * 1000) / responses : null,
      },
      machine: {
        busyPct: (machineMs / capacity) * 100,
        clientPct: (clientMs / capacity) * 100,
        serverPct: (serverMs / capacity) * 100,
        otherPct: (Math.max(0, machineMs - clientMs - serverMs) / capacity) * 100,
      },
    };
  };
}

/** One autocannon run of `durationS`, every connection following its own plan. */
async function autocannonOnce(baseUrl: string, connections: number, durationS: number, plan: Plan, rec: Recorder | null) {
  let nextClient = 0;
  const kindOf = new WeakMap<object, { kind: string }>();
  let finish!: (e: Error | null, r?: autocannon.Result) => void;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (e, r) => (e ? reject(e) : resolve(r!));
  });
  const instance = autocannon(
    {
      url: baseUrl,
      connections,
      duration: durationS,
      timeout: 30,
      setupClient: (client: autocannon.Client) => {
        const next = plan(nextClient++);
        const state = { kind: '' };
        kindOf.set(client, state);
        client.setRequests([
          {
            setupRequest: (req: autocannon.Request) => {
              const r = next();
              state.kind = r.kind;
              return {
                ...req,
                method: r.method,
                path: r.path,
                headers: { ...r.headers },
                body: r.body ?? Buffer.alloc(0),
              } as autocannon.Request;
            },
            onResponse: (status: number, body: string) => {
              if (rec && (status < 200 || status >= 300)) rec.sample(`${status} ${body}`);
            },
          },
        ]);
      },
    },
    (e, r) => finish(e, r),
  );
  if (rec) {
    instance.on('response', (client: autocannon.Client, status: number, _bytes: number, ms: number) => {
      rec.record(kindOf.get(client)?.kind ?? '?', status, ms);
    });
    instance.on('reqError', (e: Error) => rec.sample(`error: ${e.message}`));
  }
  return finished;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Time for requests abandoned in flight when a run stops (the server still finishes them) to
 * complete before the next run: an update left running could otherwise race the next one for
 * the same repository.
 */
export const drainMs = (p99: number) => Math.min(3000, Math.max(200, 2 * (Number.isFinite(p99) ? p99 : 0)));

/**
 * Warm up, then measure: the server process is probed during the measured window only. With
 * `drain`, waits after the warm-up for abandoned requests to finish (for writes).
 */
export async function runPlan(baseUrl: string, connections: number, plan: Plan, settings: LoadSettings, pids?: ServerPids, drain = false): Promise<LoadResult> {
  if (settings.warmupS > 0) {
    const warm = new Recorder();
    await autocannonOnce(baseUrl, connections, settings.warmupS, plan, warm);
    if (drain) await sleep(drainMs(stats(warm.okLatencies, warm.responses, settings.warmupS).p99));
  }
  const rec = new Recorder();
  const done = measureWindow(pids);
  const result = await autocannonOnce(baseUrl, connections, settings.durationS, plan, rec);
  return rec.result(connections, result.duration, result.errors, result.timeouts, done(rec.responses));
}

/** GET one path over keep-alive connections. */
export function getPlan(path: string): Plan {
  const req: PlannedRequest = { method: 'GET', path, kind: 'read' };
  return () => () => req;
}

// ---- a new connection per request ----

/**
 * `connections` loops, each doing GET with a fresh TCP (and TLS) connection and
 * `Connection: close`, verifying the server certificate against the bench CA like a real client.
 */
export async function runConnectionPerRequest(
  baseUrl: string,
  path: string,
  connections: number,
  settings: LoadSettings,
  pids?: ServerPids,
): Promise<LoadResult> {
  const url = new URL(path, baseUrl);
  const secure = url.protocol === 'https:';
  const secureContext = secure ? tls.createSecureContext({ ca: settings.ca }) : undefined;
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const options = {
        host: url.hostname,
        port: Number(url.port),
        path: url.pathname,
        method: 'GET',
        agent: false as const,
        headers: { Connection: 'close' },
        ...(secureContext ? { secureContext } : {}),
      };
      const req = (secure ? https : http).request(options, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    });
  const loop = async (seconds: number, rec: Recorder | null) => {
    const deadline = performance.now() + seconds * 1000;
    let errors = 0;
    let timeouts = 0;
    const worker = async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          const status = await once();
          rec?.record('read', status, performance.now() - t0);
        } catch (e) {
          errors++;
          if ((e as Error).message === 'timed out') timeouts++;
          rec?.sample(`error: ${(e as Error).message}`);
        }
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: connections }, worker));
    return { durationS: (performance.now() - start) / 1000, errors, timeouts };
  };
  if (settings.warmupS > 0) await loop(settings.warmupS, null);
  const rec = new Recorder();
  const done = measureWindow(pids);
  const r = await loop(settings.durationS, rec);
  return rec.result(connections, r.durationS, r.errors, r.timeouts, done(rec.responses));
}
