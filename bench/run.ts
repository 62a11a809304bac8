/**
 * `npm run bench`: Signet (PGlite and Postgres), the reference notary-server (memory and
 * Postgres, via anchor-up.sh) and a bare node server, side by side on loopback over the same
 * TLS, then Signet's scale workloads; writes bench/results/<timestamp>.json and
 * docs/benchmarks.md and prints a summary. Everything it starts is stopped, even on failure.
 * The client commands are measured apart, by `npm run bench:client` (bench/client.ts); the page's
 * "Client commands" section is theirs and is kept when this rewrites the page.
 *
 * Environment (all optional):
 *   BENCH_DURATION=5      measured seconds per workload
 *   BENCH_WARMUP=1        warm-up seconds per workload (discarded)
 *   BENCH_CONNECTIONS=2,50
 *   BENCH_PHASES=signet-pg,notary-pg,signet-pglite,notary-memory,bare,http,scale   (a subset to run)
 *   BENCH_DATABASE_URL    an existing Postgres (admin URL) instead of a private cluster
 *   BENCH_ANCHOR_DIR      where anchor-up.sh / anchor-down.sh are (default ../shared/anchor)
 *   BENCH_QUIET_WAIT=30   seconds to wait at the start for other work on the machine to calm down
 *   BENCH_NOISE_BUDGET=90 seconds the run may spend waiting for quiet between phases and
 *                         re-measuring workloads that ran under interference (>= 20% other load)
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../test/support/paths.js';
import { createWriterRepos, publishWithNotaryCli, readPaths, type ReadPaths } from './content.js';
import { HttpClient, tlsSummary } from './http.js';
import type { LoadSettings } from './load.js';
import { startPostgres, type PostgresServer } from './postgres.js';
import { NoiseGuard } from './noise.js';
import { rssKb, runBench, safe, run } from './proc.js';
import { computeRatios, summary, writeOutputs, type RunRecord } from './report.js';
import { runScale, type ScaleResults } from './scale.js';
import { makeTls, snapshotBuild, startBare, startNodeOptions, startNotaryServer, startSignet, tempDir, type Target } from './servers.js';
import { describe, READ_WORKLOADS, runWorkloads, WORKLOADS, type HealthFailure, type Measurement, type WorkloadId } from './workloads.js';

const ALL_PHASES = ['signet-pg', 'notary-pg', 'signet-pglite', 'notary-memory', 'bare', 'http', 'scale'] as const;
type Phase = (typeof ALL_PHASES)[number];

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
}

const say = (line: string) => console.log(line);

async function main(): Promise<number> {
  const started = new Date();
  const t0 = performance.now();
  const durationS = envNumber('BENCH_DURATION', 5);
  const warmupS = envNumber('BENCH_WARMUP', 1);
  const connections = (process.env['BENCH_CONNECTIONS'] ?? '2,50').split(',').map((c) => Number(c.trim()));
  if (connections.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('BENCH_CONNECTIONS must be a list of positive integers');
  const phases = (process.env['BENCH_PHASES'] ? process.env['BENCH_PHASES'].split(',').map((p) => p.trim()) : [...ALL_PHASES]) as Phase[];
  for (const p of phases) if (!ALL_PHASES.includes(p)) throw new Error(`unknown phase ${p} (known: ${ALL_PHASES.join(', ')})`);
  if (!existsSync(path.join(projectRoot, 'dist', 'src', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` (npm run bench does)');
  for (const tool of ['notary', 'openssl']) {
    try {
      run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      throw new Error(`${tool} is not installed (anchor-up.sh installs the notary package: apt-get install notary)`);
    }
  }

  const envShown = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_'))
    .map(([k, v]) => `${k}=${v}`);
  const command = [...envShown, 'npm run bench'].join(' ');
  say(`signet bench: ${phases.join(', ')}; ${warmupS} s warm-up + ${durationS} s per workload at ${connections.join('/')} connections`);

  const buildDigest = snapshotBuild();
  const gitState = safe(() => run('git', ['-C', projectRoot, 'describe', '--always', '--dirty']).trim());
  say(`server code: git ${gitState}, compiled src digest ${buildDigest}`);
  // Two thirds of the noise budget for the comparison, a third kept for the scale phase, whose
  // ratios hinge on a few baseline measurements.
  const noiseBudgetMs = envNumber('BENCH_NOISE_BUDGET', 90) * 1000;
  const guard = new NoiseGuard((noiseBudgetMs * 2) / 3, say);
  const scaleGuard = new NoiseGuard(noiseBudgetMs / 3, say);
  const quietBefore = await guard.waitForQuiet(envNumber('BENCH_QUIET_WAIT', 30) * 1000, true);
  const tls = makeTls();
  const settings: LoadSettings = { durationS, warmupS, ca: tls.caPem };
  const measurements: Measurement[] = [];
  const failures: string[] = [];
  const targets: RunRecord['targets'] = [];
  const log = (m: Measurement) => say(describe(m));
  const health = { failures: [] as HealthFailure[], say };
  const idleRssKb: Record<string, number | null> = {};
  /** Resident memory of a server just started, settled and before any content or load. */
  const noteIdle = async (t: Target) => {
    await new Promise((r) => setTimeout(r, 3000));
    idleRssKb[t.id] = rssKb(t.pid);
    say(`${t.id}: idle RSS after start ${((idleRssKb[t.id] ?? 0) / 1024).toFixed(0)} MB`);
  };
  const maxConnections = Math.max(...connections);
  const allWorkloads = Object.keys(WORKLOADS) as WorkloadId[];

  let postgres: PostgresServer | null = null;
  const needsPostgres = phases.some((p) => p === 'signet-pg' || p === 'http' || p === 'scale');
  if (needsPostgres) {
    postgres = await startPostgres();
    say(`postgres ${postgres.version} (${postgres.origin})`);
  }
  let signetDbUrl: string | null = null;
  let signetDataDir: string | null = null;
  let bareFiles: ReadPaths | null = null;

  const note = async (t: Target, extra?: string) => {
    targets.push({
      id: t.id,
      label: t.label,
      url: t.url,
      tls: t.url.startsWith('https:') ? await tlsSummary(t.url, tls.caPem) : null,
      ...(extra ? { note: extra } : {}),
    });
  };

  /** Publish the read repository with the notary CLI and make the writer repositories. */
  const prepare = async (t: Target, writers: boolean) => {
    const client = new HttpClient(t.url, tls.caPem);
    try {
      const p0 = performance.now();
      publishWithNotaryCli(t.url, tls.caCert, tempDir('signet-bench-cli.'));
      const reads = await readPaths(client);
      const repos = writers ? await createWriterRepos(client, 'bench/writer', maxConnections) : undefined;
      say(
        `${t.id}: content loaded in ${((performance.now() - p0) / 1000).toFixed(1)} s (timestamp ${reads.files[reads.timestamp]!.length} B, root ${reads.files[reads.root]!.length} B, targets ${reads.files[reads.targets]!.length} B)`,
      );
      return { target: t, reads, ...(repos ? { writers: repos } : {}) };
    } finally {
      client.close();
    }
  };

  const phase = async (name: Phase, work: () => Promise<void>) => {
    if (!phases.includes(name)) return;
    await (name === 'scale' ? scaleGuard : guard).waitForQuiet(10_000);
    say(
      `\n== ${name} (load average ${os
        .loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')})`,
    );
    try {
      await work();
    } catch (e) {
      const message = `${name}: ${(e as Error).stack ?? (e as Error).message}`;
      failures.push(message);
      console.error(`bench: phase failed: ${message}`);
    }
  };

  await phase('signet-pg', async () => {
    signetDbUrl = await postgres!.createDatabase('signet_bench');
    signetDataDir = tempDir('signet-bench-pg-data.');
    const s = await startSignet({ id: 'signet-pg', label: 'Signet, Postgres', databaseUrl: signetDbUrl, dataDir: signetDataDir, tls, dbPid: postgres!.dbPid });
    try {
      await note(s);
      await noteIdle(s);
      const prepared = await prepare(s, true);
      bareFiles = prepared.reads;
      measurements.push(...(await runWorkloads(prepared, allWorkloads, connections, settings, log, guard, health)));
    } finally {
      await s.stop();
    }
  });

  await phase('notary-pg', async () => {
    const n = await startNotaryServer({ id: 'notary-pg', label: 'notary-server 0.7, Postgres', store: 'postgres', tls });
    try {
      await note(n);
      await noteIdle(n);
      measurements.push(...(await runWorkloads(await prepare(n, true), allWorkloads, connections, settings, log, guard, health)));
    } finally {
      await n.stop();
    }
  });

  await phase('signet-pglite', async () => {
    const s = await startSignet({ id: 'signet-pglite', label: 'Signet, embedded PGlite', dataDir: tempDir('signet-bench-pglite.'), tls });
    try {
      await note(s);
      await noteIdle(s);
      const prepared = await prepare(s, true);
      bareFiles ??= prepared.reads;
      measurements.push(...(await runWorkloads(prepared, allWorkloads, connections, settings, log, guard, health)));
    } finally {
      await s.stop();
    }
  });

  await phase('notary-memory', async () => {
    const n = await startNotaryServer({ id: 'notary-memory', label: 'notary-server 0.7, memory', store: 'memory', tls });
    try {
      await note(n);
      await noteIdle(n);
      measurements.push(...(await runWorkloads(await prepare(n, true), allWorkloads, connections, settings, log, guard, health)));
    } finally {
      await n.stop();
    }
  });

  const bareWorkloads: WorkloadId[] = [...READ_WORKLOADS, 'new-conn-timestamp'];
  await phase('bare', async () => {
    if (!bareFiles) throw new Error('no Signet phase ran, so there are no served bytes to give the bare server');
    const reads = bareFiles as ReadPaths;
    const b = await startBare({ id: 'bare', label: `bare node:https, bytes from memory (node ${startNodeOptions().join(' ')})`, files: reads.files, tls });
    try {
      await note(b, `serves Signet's bytes for ${Object.keys(reads.files).length} paths`);
      measurements.push(...(await runWorkloads({ target: b, reads }, bareWorkloads, connections, settings, log, guard, health)));
    } finally {
      await b.stop();
    }
  });

  await phase('http', async () => {
    if (!signetDbUrl || !bareFiles) throw new Error('the http phase needs the signet-pg phase (its database and bytes)');
    const reads = bareFiles as ReadPaths;
    const httpWorkloads: WorkloadId[] = ['get-timestamp', 'new-conn-timestamp'];
    const s = await startSignet({
      id: 'signet-pg-http',
      label: 'Signet, Postgres, plain http',
      databaseUrl: signetDbUrl,
      dataDir: signetDataDir!,
      dbPid: postgres!.dbPid,
    });
    try {
      await note(s);
      measurements.push(...(await runWorkloads({ target: s, reads }, httpWorkloads, connections, settings, log, guard, health)));
    } finally {
      await s.stop();
    }
    const b = await startBare({ id: 'bare-http', label: `bare node:http, bytes from memory (node ${startNodeOptions().join(' ')})`, files: reads.files });
    try {
      await note(b);
      measurements.push(...(await runWorkloads({ target: b, reads }, httpWorkloads, connections, settings, log, guard, health)));
    } finally {
      await b.stop();
    }
  });

  let scale: ScaleResults | null = null;
  await phase('scale', async () => {
    scale = await runScale(postgres!, tls, settings, say, scaleGuard);
  });

  const notMeasured = [
    'Writes (post-update, mix-95-5) on the bare node server: it only serves fixed bytes, there is nothing to sign or store.',
    'notary-server over plain http: anchor-up.sh always configures TLS, so the http rows compare Signet with the bare server only.',
    "notary-server at scale (10,000 versions or repositories, 1,000,000 changefeed records, 50,000-target upload): the scale workloads insert rows into Signet's schema and are reported for Signet only, as ratios to its own fresh-repository figures.",
    'Memory of the Postgres servers: peak RSS is that of the server process only (Signet with PGlite carries its database inside its own RSS, which is why it is larger).',
    'Latency under an open-loop (fixed-rate) load: autocannon runs closed-loop, one request in flight per connection, so p99 does not include queueing of requests a slow server would have received meanwhile (coordinated omission).',
    'The 10,000-repository case with distinct content per repository: copies share bytes, so content-addressed caches see only hits.',
  ];

  if (postgres && postgres.dbPid === null) {
    notMeasured.push(
      "CPU of Signet's Postgres (BENCH_DATABASE_URL is not a cluster this run started): Signet's CPU/req excludes its database, notary-server's includes it.",
    );
  }

  const record: RunRecord = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    elapsedS: (performance.now() - t0) / 1000,
    command,
    code: { git: gitState, srcDigest: buildDigest },
    settings: { durationS, warmupS, connections, phases },
    noise: { budgetS: noiseBudgetMs / 1000, spentS: guard.spentS + scaleGuard.spentS, remeasured: guard.retries + scaleGuard.retries },
    machine: {
      nproc: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      kernel: os.release(),
      free: safe(() => run('free', ['-h'])),
      node: process.version,
      postgres: postgres?.version ?? 'not used',
      notaryServer: safe(() => run('sh', ['-c', "dpkg-query -W -f='${Version}' notary 2>/dev/null || notary-server -version"])),
      loadavgStart: loadavgAtStart,
      busyBeforeStartPct: quietBefore,
      loadavgEnd: os.loadavg(),
    },
    targets,
    measurements,
    idleRssKb,
    health: health.failures,
    ratios: computeRatios(measurements),
    scale,
    notMeasured,
    failures,
  };
  const files = writeOutputs(projectRoot, record);
  say(summary(record));
  say(`\nwritten: ${path.relative(projectRoot, files.json)}, ${path.relative(projectRoot, files.markdown)} (${record.elapsedS.toFixed(0)} s)`);
  return failures.length ? 1 : 0;
}

const loadavgAtStart = os.loadavg();

runBench('bench', main);
