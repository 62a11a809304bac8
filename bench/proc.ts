/**
 * Processes for the benchmark: spawning with a readiness line, a cleanup stack that runs on
 * success, failure and signals (so nothing the run started outlives it), and /proc sampling of
 * a server's memory and CPU.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

// ---- cleanup ----

interface CleanupEntry {
  name: string;
  run: () => Promise<void> | void;
  /** Best effort, synchronous: used when the process is exiting and cannot await. */
  sync?: () => void;
}

const stack: CleanupEntry[] = [];
let installed = false;

/** Register something to undo; returns a function that runs it now (and unregisters it). */
export function onCleanup(name: string, run: () => Promise<void> | void, sync?: () => void): () => Promise<void> {
  installSignalHandlers();
  const entry: CleanupEntry = { name, run, ...(sync ? { sync } : {}) };
  stack.push(entry);
  return async () => {
    const i = stack.indexOf(entry);
    if (i < 0) return;
    stack.splice(i, 1);
    await runEntry(entry);
  };
}

async function runEntry(entry: CleanupEntry): Promise<void> {
  try {
    await entry.run();
  } catch (e) {
    console.error(`cleanup ${entry.name}: ${(e as Error).message}`);
  }
}

/** Undo everything still registered, newest first. */
export async function cleanupAll(): Promise<void> {
  while (stack.length > 0) await runEntry(stack.pop()!);
}

function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, cleaning up`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
  // Last resort when the process exits without having cleaned up (e.g. process.exit elsewhere).
  process.once('exit', () => {
    while (stack.length > 0) {
      const entry = stack.pop()!;
      try {
        entry.sync?.();
      } catch {
        // nothing more can be done while exiting
      }
    }
  });
}

// ---- child processes ----

export interface Child {
  name: string;
  pid: number;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Spawn a long-running child and wait for `ready` to match its output; stopped at cleanup. */
export async function spawnReady(
  name: string,
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; ready: RegExp; timeoutMs?: number },
): Promise<{ proc: Child; match: RegExpExecArray }> {
  const child = spawn(command, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const unregister = onCleanup(`${name} (pid ${child.pid})`, stop, () => {
    child.kill('SIGKILL');
  });
  const proc: Child = { name, pid: child.pid!, child, output: () => output, stop: unregister };
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in time:\n${output.slice(-2000)}`)), opts.timeoutMs ?? 120_000);
    const onData = (chunk: Buffer) => {
      // Keep only the tail: servers under load may log a lot.
      output = (output + chunk.toString()).slice(-20_000);
      const m = opts.ready.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${output.slice(-2000)}`));
    });
  }).catch(async (e) => {
    await unregister();
    throw e;
  });
  return { proc, match };
}

/** Run a command to completion; throws with its output when it fails. */
export function run(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(command, args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new Error(`${command} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}:\n${(r.stdout ?? '') + (r.stderr ?? '')}`.slice(0, 4000));
  return r.stdout;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free port P whose P + offset is free too (anchor-up puts Postgres on PORT + 10000). */
export async function freePortPair(offset: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    if ((await portIsFree(port)) && (await portIsFree(port + offset))) return port;
  }
  throw new Error('no free port pair found');
}

// ---- /proc sampling ----

function statusField(pid: number, field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Peak resident set size (VmHWM) in kB since start or the last `resetPeakRss`. */
export const peakRssKb = (pid: number) => statusField(pid, 'VmHWM');
export const rssKb = (pid: number) => statusField(pid, 'VmRSS');

/** Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); false when not allowed. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": fields[0] is the state (field 3 of proc(5)).
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** User + system CPU time of a process, in milliseconds (with `children`, also of its reaped children). */
export function cpuMs(pid: number, children = false): number | null {
  const f = statFields(pid);
  if (!f) return null;
  // utime, stime, cutime, cstime are fields 14-17.
  const ticks = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
  return (ticks * 1000) / CLOCK_TICKS;
}

/**
 * CPU of a process tree one level deep, in ms: the process (with its reaped children) and its
 * live children. A Postgres postmaster's backends are its direct children.
 */
export function treeCpuMs(pid: number): number | null {
  const own = cpuMs(pid, true);
  if (own === null) return null;
  let sum = own;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (f && Number(f[1]) === pid) sum += cpuMs(Number(entry)) ?? 0;
  }
  return sum;
}

/** Busy CPU time of the whole machine (all cores), in ms. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...
  const busy = line[0]! + line[1]! + line[2]! + line[5]! + line[6]! + (line[7] ?? 0);
  return (busy * 1000) / CLOCK_TICKS;
}

/** The postmaster pid of a Postgres data directory, or null. */
export function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export interface ProbeResult {
  /** Peak RSS of the server process during the window (kB); not of its database. */
  peakRssKb: number | null;
  /** True when the peak could not be reset, so it is the peak since the process started. */
  peakSinceStart: boolean;
  /** CPU used by the server process, and by its database server (postmaster + backends), ms. */
  cpuMs: number | null;
  dbCpuMs: number | null;
  /** Whole machine busy time, ms (2 cores: up to 2x the window). */
  machineBusyMs: number;
}

/** Samples a server process (and its database) around a workload. */
export class ProcessProbe {
  private cpuStart: number | null = null;
  private dbStart: number | null = null;
  private machineStart = 0;
  private peakReset = false;

  constructor(
    readonly pid: number,
    readonly dbPid?: number | null,
  ) {}

  start(): void {
    this.peakReset = resetPeakRss(this.pid);
    this.cpuStart = cpuMs(this.pid);
    this.dbStart = this.dbPid ? treeCpuMs(this.dbPid) : null;
    this.machineStart = machineBusyMs();
  }

  finish(): ProbeResult {
    const end = cpuMs(this.pid);
    const dbEnd = this.dbPid ? treeCpuMs(this.dbPid) : null;
    return {
      peakRssKb: peakRssKb(this.pid),
      peakSinceStart: !this.peakReset,
      cpuMs: end !== null && this.cpuStart !== null ? end - this.cpuStart : null,
      dbCpuMs: dbEnd !== null && this.dbStart !== null ? dbEnd - this.dbStart : null,
      machineBusyMs: machineBusyMs() - this.machineStart,
    };
  }
}

/** The output of a command that describes the machine, or why it could not be read. */
export function safe(f: () => string): string {
  try {
    return f().trimEnd();
  } catch (e) {
    return `unknown (${(e as Error).message.split('\n')[0]})`;
  }
}

/** Run a bench's main: stop everything it started, set the exit code, never hang on open sockets. */
export function runBench(label: string, main: () => Promise<number>): void {
  main()
    .then(
      async (code) => {
        await cleanupAll();
        process.exitCode = code;
      },
      async (e: unknown) => {
        console.error(`${label}: ${(e as Error).stack ?? String(e)}`);
        await cleanupAll();
        process.exitCode = 1;
      },
    )
    .finally(() => {
      // autocannon or sockets must not keep the process alive once everything is stopped.
      setTimeout(() => process.exit(), 2000).unref();
    });
}

/** An integer setting of a benchmark from the environment, at least `min`. */
export function envInt(name: string, fallback: number, min: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}`);
  return n;
}

/** Write `section` (which begins with `start` and ends with `end`) into the page at `file`, replacing the one between those markers or appending. */
export function writePageSection(file: string, section: string, start: string, end: string): void {
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  writeFileSync(file, a >= 0 && b > a ? text.slice(0, a) + section + text.slice(b + end.length) : `${text.trimEnd()}\n\n${section}\n`);
}
