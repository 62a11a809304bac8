/**
 * `npm run bench:client`: the client commands as whole processes, Signet's `signet trust sign` /
 * `signet verify` against the reference `notary` CLI (Debian notary 0.7), both clients against
 * the same server in one run: Signet's server (PGlite) and, unless left out, the reference
 * notary-server (memory store, via anchor-up.sh). Also the start-up of `signet --version` and
 * `signet trust --help` against `node -e 0`. Each contender runs `BENCH_CLIENT_RUNS` times,
 * interleaved run by run with the others; wall time, peak RSS and CPU per process come from
 * /usr/bin/time. CPU profiles of each Signet command say where its time goes.
 *
 * Writes bench/results/<timestamp>-client.json and the "Client commands" section of
 * docs/benchmarks.md (the rest of that page belongs to `npm run bench`), and prints a summary.
 *
 * Environment (all optional):
 *   BENCH_CLIENT_RUNS=20        measured runs per contender and measurement
 *   BENCH_CLIENT_WARMUP=2       discarded runs per contender before them
 *   BENCH_CLIENT_SERVERS=signet,notary   which servers to run the clients against
 *   BENCH_CLIENT_PROFILE=1      0: skip the CPU profiles
 *   BENCH_QUIET_WAIT=30         seconds to wait at the start for other work on the machine to calm down
 *   BENCH_NOISE_BUDGET=60       seconds the run may spend waiting for quiet before a measurement and
 *                               taking again one that ran under interference (>= 20% other load)
 *   BENCH_ANCHOR_DIR            where anchor-up.sh / anchor-down.sh are (default ../shared/anchor)
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../test/support/paths.js';
import { HttpClient } from './http.js';
import { NoiseGuard } from './noise.js';
import { runBench, safe, cpuMs, envInt, machineBusyMs, run } from './proc.js';
import { combineProfiles, summarizeProfile, type ProfileSummary } from './cpu-profile.js';
import {
  clientRatios,
  clientSummary,
  stats,
  writeClientOutputs,
  type ClientMeasurement,
  type ClientRecord,
  type ContenderResult,
  type ProfileRow,
  type Sample,
} from './client-report.js';
import { makeTls, signetMain, snapshotBuild, startNotaryServer, startSignet, tempDir, type Target } from './servers.js';

const say = (line: string) => console.log(line);

const PASSPHRASE = 'bench-passphrase';
const SIGNET_IMAGE = 'localhost:5000/bench/signet-client';
const NOTARY_GUN = 'localhost:5000/bench/notary-client';
const SIGNER = 'bench';
const SIGNER_ROLES = ['targets/releases', `targets/${SIGNER}`];
const ARTIFACT_SIZE = 1534;
/** Profiled runs per Signet command (the median of each category is reported). */
const PROFILE_RUNS = 3;

/** The digest a tag is signed with: distinct per tag, like a manifest's. */
const digestOf = (tag: string) => createHash('sha256').update(`bench manifest ${tag}\n`).digest('hex');

interface Invocation {
  cmd: string;
  args: string[];
  /** When set, the run only counts if stdout contains it (e.g. the digest a verify must print). */
  expect?: string;
  cwd?: string;
}

interface Contender {
  id: string;
  label: string;
  /** The command line shown in the report, with placeholders. */
  shown: string;
  /** The process for one run; `tag` is unique per run (warm-up runs included). */
  invocation: (tag: string) => Invocation;
  /** Run before each run, untimed (e.g. a fresh trust directory for the cold case). */
  before?: (tag: string) => void;
}

class ClientBench {
  readonly measurements: ClientMeasurement[] = [];
  private readonly timeFile: string;

  constructor(
    readonly work: string,
    readonly env: NodeJS.ProcessEnv,
    readonly runs: number,
    readonly warmup: number,
    readonly guard: NoiseGuard,
  ) {
    this.timeFile = path.join(work, 'time.out');
  }

  /** One process under /usr/bin/time: wall time (measured here), peak RSS and CPU (from time). */
  runOnce(inv: Invocation, serverPid: number | null): Sample & { serverCpuMs: number | null } {
    const server0 = serverPid ? cpuMs(serverPid) : null;
    const t0 = performance.now();
    const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', '-o', this.timeFile, inv.cmd, ...inv.args], {
      env: this.env,
      cwd: inv.cwd ?? this.work,
      encoding: 'utf8',
      timeout: 120_000,
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 16 * 1024 * 1024,
    });
    const wallMs = performance.now() - t0;
    const server1 = serverPid ? cpuMs(serverPid) : null;
    const shown = `${path.basename(inv.cmd)} ${inv.args.join(' ')}`;
    if (r.error) throw new Error(`${shown}: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`${shown} exited ${r.status}:\n${(r.stdout + r.stderr).slice(-3000)}`);
    if (inv.expect && !r.stdout.includes(inv.expect)) throw new Error(`${shown}: output lacks ${inv.expect}:\n${(r.stdout + r.stderr).slice(-2000)}`);
    const last = readFileSync(this.timeFile, 'utf8').trim().split('\n').pop()!;
    const [rssKb, user, sys] = last.split(' ').map(Number) as [number, number, number];
    return {
      wallMs,
      rssKb,
      cpuMs: (user + sys) * 1000,
      serverCpuMs: server0 !== null && server1 !== null ? server1 - server0 : null,
    };
  }

  /**
   * Warm-up runs, then `runs` rounds; in each round every contender runs once, the order rotated
   * from round to round so that no contender always runs first (or right after another). When
   * the machine was busy with other work meanwhile and the noise budget allows, the whole
   * measurement is taken again after a quieter moment, keeping the attempt with less interference.
   */
  async measure(id: string, title: string, server: Target | null, contenders: Contender[]): Promise<ClientMeasurement> {
    await this.guard.waitForQuiet(10_000);
    const t0 = performance.now();
    let best = this.attempt(id, server, contenders, 0);
    const notes: string[] = [];
    const cost = performance.now() - t0;
    if (this.guard.shouldRetry(best.otherPct, cost + 5000)) {
      await this.guard.waitForQuiet(10_000);
      const t1 = performance.now();
      const second = this.attempt(id, server, contenders, 1);
      this.guard.charge(performance.now() - t1);
      const first = best;
      best = second.otherPct <= first.otherPct ? second : first;
      notes.push(
        `measured twice (other load ${first.otherPct.toFixed(0)}%, then ${second.otherPct.toFixed(0)}%): kept the ${best === second ? 'second' : 'first'}`,
      );
    }
    const m: ClientMeasurement = { id, title, server: server?.id ?? null, ...best, elapsedS: (performance.now() - t0) / 1000, notes };
    this.measurements.push(m);
    say(
      `${(server?.id ?? '-').padEnd(7)} ${id.padEnd(17)} ` +
        best.contenders.map((r) => `${r.id} ${r.wallMs.median.toFixed(1)} ms (p90 ${r.wallMs.p90.toFixed(1)})`).join('  ') +
        (best.otherPct >= 10 ? `  [other load ${best.otherPct.toFixed(0)}%]` : '') +
        (notes.length ? `  [${notes.join('; ')}]` : ''),
    );
    return m;
  }

  private attempt(id: string, server: Target | null, contenders: Contender[], attempt: number): { contenders: ContenderResult[]; otherPct: number } {
    const serverPid = server?.pid ?? null;
    const prefix = attempt === 0 ? id : `${id}-a${attempt}`;
    for (let w = 0; w < this.warmup; w++) {
      for (const c of contenders) {
        const tag = `${prefix}-w${w}`;
        c.before?.(tag);
        this.runOnce(c.invocation(tag), serverPid);
      }
    }
    const samples = new Map<string, (Sample & { serverCpuMs: number | null })[]>(contenders.map((c) => [c.id, []]));
    const busy0 = machineBusyMs();
    const own0 = process.cpuUsage();
    const server0 = serverPid ? cpuMs(serverPid) : null;
    const w0 = performance.now();
    let accounted = 0;
    for (let i = 0; i < this.runs; i++) {
      for (let k = 0; k < contenders.length; k++) {
        const c = contenders[(i + k) % contenders.length]!;
        const tag = `${prefix}-r${i}`;
        c.before?.(tag);
        const s = this.runOnce(c.invocation(tag), serverPid);
        samples.get(c.id)!.push(s);
        accounted += s.cpuMs;
      }
    }
    const windowMs = performance.now() - w0;
    const own = process.cpuUsage(own0);
    const serverCpu = serverPid && server0 !== null ? (cpuMs(serverPid) ?? server0) - server0 : 0;
    // Busy time of the machine not explained by the measured processes, the server and this one.
    const other = machineBusyMs() - busy0 - accounted - (own.user + own.system) / 1000 - serverCpu;
    const otherPct = Math.max(0, (other / (windowMs * os.availableParallelism())) * 100);
    return {
      otherPct,
      contenders: contenders.map((c) => {
        const list = samples.get(c.id)!;
        const serverCpus = list.map((s) => s.serverCpuMs).filter((v): v is number => v !== null);
        return {
          id: c.id,
          label: c.label,
          command: c.shown,
          wallMs: stats(list.map((s) => s.wallMs)),
          rssKb: stats(list.map((s) => s.rssKb)),
          cpuMeanMs: list.reduce((a, s) => a + s.cpuMs, 0) / list.length,
          serverCpuMeanMs: serverCpus.length ? serverCpus.reduce((a, v) => a + v, 0) / serverCpus.length : null,
          samples: list.map(({ wallMs, rssKb, cpuMs }) => ({ wallMs: round(wallMs), rssKb, cpuMs })),
        };
      }),
    };
  }
}

const round = (v: number) => Math.round(v * 1000) / 1000;

async function main(): Promise<number> {
  const started = new Date();
  const t0 = performance.now();
  const runs = envInt('BENCH_CLIENT_RUNS', 20, 3);
  const warmup = envInt('BENCH_CLIENT_WARMUP', 2, 0);
  const servers = (process.env['BENCH_CLIENT_SERVERS'] ?? 'signet,notary').split(',').map((s) => s.trim());
  for (const s of servers) if (s !== 'signet' && s !== 'notary') throw new Error(`BENCH_CLIENT_SERVERS: unknown server ${s} (known: signet, notary)`);
  const profile = process.env['BENCH_CLIENT_PROFILE'] !== '0';
  if (!existsSync(path.join(projectRoot, 'dist', 'src', 'cli', 'main.js')))
    throw new Error('dist/ is missing: run `npm run build` (npm run bench:client does)');
  for (const tool of ['notary', 'openssl', '/usr/bin/time', ...(servers.includes('notary') ? ['notary-server'] : [])]) {
    try {
      run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      throw new Error(`${tool} is not installed (notary, notary-server: apt-get install notary; /usr/bin/time: apt-get install time)`);
    }
  }
  const envShown = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_'))
    .map(([k, v]) => `${k}=${v}`);
  const command = [...envShown, 'npm run bench:client'].join(' ');
  say(`signet client bench: ${runs} runs (+${warmup} warm-up) per contender, against ${servers.join(' and ')}`);

  const srcDigest = snapshotBuild();
  const gitState = safe(() => run('git', ['-C', projectRoot, 'describe', '--always', '--dirty']).trim());
  say(`client code: git ${gitState}, compiled src digest ${srcDigest}`);
  const noiseBudgetS = envInt('BENCH_NOISE_BUDGET', 60, 0);
  const guard = new NoiseGuard(noiseBudgetS * 1000, say);
  const quietBefore = await guard.waitForQuiet(envInt('BENCH_QUIET_WAIT', 30, 0) * 1000, true);
  const tls = makeTls();
  const work = tempDir('signet-bench-client.');
  const home = path.join(work, 'home');
  const dockerConfig = path.join(home, '.docker');
  mkdirSync(dockerConfig, { recursive: true });
  // The same environment for every process: nothing from the caller's docker or notary config.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: home,
    DOCKER_CONFIG: dockerConfig,
    LANG: 'C.UTF-8',
    NOTARY_ROOT_PASSPHRASE: PASSPHRASE,
    NOTARY_TARGETS_PASSPHRASE: PASSPHRASE,
    NOTARY_SNAPSHOT_PASSPHRASE: PASSPHRASE,
    NOTARY_DELEGATION_PASSPHRASE: PASSPHRASE,
    DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE: PASSPHRASE,
    DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE: PASSPHRASE,
  };
  const bench = new ClientBench(work, env, runs, warmup, guard);
  const node = process.execPath;
  const main = signetMain();
  const failures: string[] = [];
  const serverRows: ClientRecord['servers'] = [];
  const profiles: ProfileRow[] = [];
  const shapes: Record<string, Record<string, string[]>> = {};
  const checks: ClientRecord['checks'] = [];

  const signet = (...args: string[]): Invocation => ({ cmd: node, args: [main, ...args] });
  const untimed = (inv: Invocation) => run(inv.cmd, inv.args, { env, cwd: work, timeoutMs: 120_000 });

  /** PROFILE_RUNS runs of a Signet command under `node --cpu-prof`, after a quiet moment; the median of each category. */
  const profileCommand = async (name: string, invocation: (k: number) => Invocation) => {
    await guard.waitForQuiet(5000);
    const runsOf: { wallMs: number; summary: ProfileSummary }[] = [];
    for (let k = 0; k < PROFILE_RUNS; k++) {
      const inv = invocation(k);
      const profDir = path.join(work, 'profiles', `${name.replace(/\W+/g, '-')}-${k}`);
      const t1 = performance.now();
      run(inv.cmd, ['--cpu-prof', '--cpu-prof-dir', profDir, ...inv.args], { env, cwd: work, timeoutMs: 120_000 });
      runsOf.push({ wallMs: performance.now() - t1, summary: summarizeProfile(profDir) });
    }
    profiles.push({
      command: name,
      runs: PROFILE_RUNS,
      wallMs: stats(runsOf.map((r) => r.wallMs)).median,
      summary: combineProfiles(runsOf.map((r) => r.summary)),
    });
  };

  /** Everything for one server: the two repositories, then sign and verify, measured. */
  const clientsAgainst = async (t: Target) => {
    const dir = path.join(work, t.id);
    const sDir = path.join(dir, 'signet-trust');
    const nDir = path.join(dir, 'notary-trust');
    const sVerifier = path.join(dir, 'signet-verifier');
    const nVerifier = path.join(dir, 'notary-verifier');
    mkdirSync(dir, { recursive: true });
    const sOpts = (trustDir: string) => ['--server', t.url, '--tlscacert', tls.caCert, '--trust-dir', trustDir];
    const nOpts = (trustDir: string) => ['-s', t.url, '-d', trustDir, '--tlscacert', tls.caCert];
    const notary = (trustDir: string, ...args: string[]): Invocation => ({ cmd: 'notary', args: [...nOpts(trustDir), ...args] });

    // The same repository shape on both sides, as `docker trust sign` makes it: root and targets
    // keys held by the client, snapshot and timestamp keys by the server, and the signer's
    // delegations targets/releases and targets/bench (one key), with the tag `init` signed.
    const s0 = performance.now();
    untimed(
      signet(
        'trust',
        'sign',
        `${SIGNET_IMAGE}:init`,
        '--signer',
        SIGNER,
        '--digest',
        `sha256:${digestOf('init')}`,
        '--size',
        String(ARTIFACT_SIZE),
        ...sOpts(sDir),
      ),
    );
    untimed(notary(nDir, 'init', NOTARY_GUN, '-p'));
    untimed(notary(nDir, 'key', 'rotate', NOTARY_GUN, 'snapshot', '-r'));
    const key = path.join(dir, `${SIGNER}.key`);
    const cert = path.join(dir, `${SIGNER}.crt`);
    run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
    run('openssl', ['req', '-new', '-x509', '-key', key, '-out', cert, '-days', '30', '-subj', `/CN=${SIGNER}`]);
    untimed(notary(nDir, 'delegation', 'add', NOTARY_GUN, 'targets/releases', cert, '--all-paths'));
    untimed(notary(nDir, 'delegation', 'add', NOTARY_GUN, `targets/${SIGNER}`, cert, '--all-paths', '-p'));
    untimed(notary(nDir, 'key', 'import', key, '--role', `targets/${SIGNER}`));
    untimed(notary(nDir, 'addhash', NOTARY_GUN, 'init', String(ARTIFACT_SIZE), '--sha256', digestOf('init'), ...SIGNER_ROLES.flatMap((r) => ['-r', r]), '-p'));
    shapes[t.id] = await repositoryShapes(t.url, tls.caPem);
    say(`${t.id}: repositories ready in ${((performance.now() - s0) / 1000).toFixed(1)} s (${JSON.stringify(shapes[t.id])})`);

    const signetSign = (extra: string[]): Contender => ({
      id: 'signet',
      label: 'signet trust sign',
      shown: `signet trust sign ${SIGNET_IMAGE}:TAG --digest sha256:HEX --size ${ARTIFACT_SIZE}${extra.length ? ` ${extra.join(' ')}` : ''} --server URL --tlscacert CA --trust-dir DIR`,
      invocation: (tag) =>
        signet('trust', 'sign', `${SIGNET_IMAGE}:${tag}`, '--digest', `sha256:${digestOf(tag)}`, '--size', String(ARTIFACT_SIZE), ...extra, ...sOpts(sDir)),
    });
    const notaryAdd = (roles: string[]): Contender => ({
      id: 'notary',
      label: 'notary addhash -p',
      shown: `notary -s URL -d DIR --tlscacert CA addhash ${NOTARY_GUN} TAG ${ARTIFACT_SIZE} --sha256 HEX${roles.map((r) => ` -r ${r}`).join('')} -p`,
      invocation: (tag) => notary(nDir, 'addhash', NOTARY_GUN, tag, String(ARTIFACT_SIZE), '--sha256', digestOf(tag), ...roles.flatMap((r) => ['-r', r]), '-p'),
    });
    // Each client checks the other's repository: the same shape, signed by the same signer.
    untimed({ ...signet('verify', `${NOTARY_GUN}:init`, '--signer', SIGNER, ...sOpts(path.join(dir, 'cross-signet'))), expect: digestOf('init') });
    untimed({ ...notary(path.join(dir, 'cross-notary'), 'lookup', SIGNET_IMAGE, 'init'), expect: digestOf('init') });

    /** A sign measurement, checked to have changed the same roles by as many versions on both sides. */
    const signMeasurement = async (id: string, title: string, contenders: Contender[]) => {
      const before = await roleVersions(t.url, tls.caPem);
      await bench.measure(id, title, t, contenders);
      const after = await roleVersions(t.url, tls.caPem);
      const delta = (gun: string) => Object.fromEntries(Object.keys(after[gun]!).map((r) => [r, after[gun]![r]! - (before[gun]![r] ?? 0)]));
      const check = { server: t.id, measurement: id, signet: delta(SIGNET_IMAGE), notary: delta(NOTARY_GUN) };
      checks.push({ ...check, same: JSON.stringify(check.signet) === JSON.stringify(check.notary) });
      if (!checks.at(-1)!.same) failures.push(`${t.id} ${id}: the clients changed different roles: ${JSON.stringify(check)}`);
    };
    await signMeasurement('sign-delegations', "sign + publish a new tag into targets/releases and targets/bench (docker trust sign's roles)", [
      signetSign([]),
      notaryAdd(SIGNER_ROLES),
    ]);
    await signMeasurement('sign-targets', 'sign + publish a new tag into targets', [signetSign(['--role', 'targets']), notaryAdd([])]);

    const verifyContenders = (fresh: boolean): Contender[] => {
      const dirFor = (base: string, tag: string) => (fresh ? `${base}-${tag}` : base);
      const reset = (base: string) => (tag: string) => rmSync(dirFor(base, tag), { recursive: true, force: true });
      return [
        {
          id: 'signet',
          label: 'signet verify',
          shown: `signet verify ${SIGNET_IMAGE}:init --server URL --tlscacert CA --trust-dir DIR`,
          invocation: (tag) => ({ ...signet('verify', `${SIGNET_IMAGE}:init`, ...sOpts(dirFor(sVerifier, tag))), expect: digestOf('init') }),
          ...(fresh ? { before: reset(sVerifier) } : {}),
        },
        {
          id: 'notary',
          label: 'notary lookup',
          shown: `notary -s URL -d DIR --tlscacert CA lookup ${NOTARY_GUN} init`,
          invocation: (tag) => ({ ...notary(dirFor(nVerifier, tag), 'lookup', NOTARY_GUN, 'init'), expect: digestOf('init') }),
          ...(fresh ? { before: reset(nVerifier) } : {}),
        },
      ];
    };
    // Warm: a separate verifier's trust directory that already trusts the root and holds the
    // current metadata (the warm-up runs bring it up to date). Cold: a new, empty one every run.
    untimed(signet('verify', `${SIGNET_IMAGE}:init`, ...sOpts(sVerifier)));
    untimed(notary(nVerifier, 'lookup', NOTARY_GUN, 'init'));
    await bench.measure('verify-warm', 'verify a signed tag, warm trust cache (root trusted, metadata current)', t, verifyContenders(false));
    await bench.measure('verify-cold', 'verify a signed tag, first use (empty trust directory: trust on first use)', t, verifyContenders(true));

    if (profile && t.kind === 'signet') {
      await profileCommand('signet trust sign (new tag, delegations)', (k) =>
        signet(
          'trust',
          'sign',
          `${SIGNET_IMAGE}:profiled-${k}`,
          '--digest',
          `sha256:${digestOf(`profiled-${k}`)}`,
          '--size',
          String(ARTIFACT_SIZE),
          ...sOpts(sDir),
        ),
      );
      untimed(signet('verify', `${SIGNET_IMAGE}:init`, ...sOpts(sVerifier)));
      await profileCommand('signet verify (warm)', () => signet('verify', `${SIGNET_IMAGE}:init`, ...sOpts(sVerifier)));
      await profileCommand('signet verify (cold)', (k) => signet('verify', `${SIGNET_IMAGE}:init`, ...sOpts(`${sVerifier}-profiled-${k}`)));
    }
  };

  const phase = async (name: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (e) {
      const message = `${name}: ${(e as Error).stack ?? (e as Error).message}`;
      failures.push(message);
      console.error(`bench: failed: ${message}`);
    }
  };

  await phase('start-up', async () => {
    await bench.measure('startup', 'start-up: print the version / the help and exit', null, [
      { id: 'true', label: 'true (the spawn itself)', shown: 'true', invocation: () => ({ cmd: 'true', args: [] }) },
      { id: 'node', label: 'node -e 0', shown: 'node -e 0', invocation: () => ({ cmd: node, args: ['-e', '0'] }) },
      {
        id: 'zod',
        label: "node: import('zod')",
        shown: `node --input-type=module -e "await import('zod')"`,
        invocation: () => ({ cmd: node, args: ['--input-type=module', '-e', "await import('zod')"], cwd: projectRoot }),
      },
      { id: 'signet-version', label: 'signet --version', shown: 'signet --version', invocation: () => signet('--version') },
      { id: 'signet-help', label: 'signet trust --help', shown: 'signet trust --help', invocation: () => signet('trust', '--help') },
      { id: 'notary-version', label: 'notary version', shown: 'notary version', invocation: () => ({ cmd: 'notary', args: ['version'] }) },
    ]);
    if (profile) {
      await profileCommand('signet --version', () => signet('--version'));
      await profileCommand('signet trust --help', () => signet('trust', '--help'));
    }
  });

  if (servers.includes('signet')) {
    await phase('signet server', async () => {
      const s = await startSignet({ id: 'signet', label: 'Signet server, embedded PGlite', dataDir: tempDir('signet-bench-client-pglite.'), tls });
      try {
        serverRows.push({ id: s.id, label: s.label, url: s.url });
        await clientsAgainst(s);
      } finally {
        await s.stop();
      }
    });
  }
  if (servers.includes('notary')) {
    await phase('notary-server', async () => {
      const n = await startNotaryServer({ id: 'notary', label: 'notary-server 0.7, memory', store: 'memory', tls });
      try {
        serverRows.push({ id: n.id, label: n.label, url: n.url });
        await clientsAgainst(n);
      } finally {
        await n.stop();
      }
    });
  }

  const record: ClientRecord = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    elapsedS: (performance.now() - t0) / 1000,
    command,
    code: { git: gitState, srcDigest },
    settings: { runs, warmup, servers, profile },
    noise: { budgetS: noiseBudgetS, spentS: guard.spentS, remeasured: guard.retries },
    machine: {
      nproc: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      kernel: os.release(),
      node: process.version,
      notary: safe(() => run('sh', ['-c', "dpkg-query -W -f='${Version}' notary 2>/dev/null || notary version"])),
      busyBeforeStartPct: quietBefore,
      loadavgStart,
      loadavgEnd: os.loadavg(),
    },
    servers: serverRows,
    shapes,
    checks,
    measurements: bench.measurements,
    ratios: clientRatios(bench.measurements),
    profiles,
    failures,
  };
  const files = writeClientOutputs(projectRoot, record);
  say(clientSummary(record));
  say(`\nwritten: ${path.relative(projectRoot, files.json)}, ${path.relative(projectRoot, files.markdown)} (${record.elapsedS.toFixed(0)} s)`);
  return failures.length ? 1 : 0;
}

/** The roles each repository's snapshot lists, to check both sides have the same shape. */
async function repositoryShapes(url: string, ca: Buffer): Promise<Record<string, string[]>> {
  const client = new HttpClient(url, ca);
  try {
    const out: Record<string, string[]> = {};
    for (const gun of [SIGNET_IMAGE, NOTARY_GUN]) {
      const snapshot = JSON.parse((await client.get(`/v2/${gun}/_trust/tuf/snapshot.json`)).toString()) as { signed: { meta: Record<string, unknown> } };
      out[gun] = Object.keys(snapshot.signed.meta).sort();
    }
    const [a, b] = Object.values(out);
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`the two repositories differ in shape: ${JSON.stringify(out)}`);
    return out;
  } finally {
    client.close();
  }
}

/** The version of targets and the signer's delegations in each repository, from the server. */
async function roleVersions(url: string, ca: Buffer): Promise<Record<string, Record<string, number>>> {
  const client = new HttpClient(url, ca);
  try {
    const out: Record<string, Record<string, number>> = {};
    for (const gun of [SIGNET_IMAGE, NOTARY_GUN]) {
      out[gun] = {};
      for (const role of ['targets', ...SIGNER_ROLES]) {
        const file = JSON.parse((await client.get(`/v2/${gun}/_trust/tuf/${role}.json`)).toString()) as { signed: { version: number } };
        out[gun][role] = file.signed.version;
      }
    }
    return out;
  } finally {
    client.close();
  }
}

const loadavgStart = os.loadavg();

runBench('bench', main);
