/** The compiled `signet` command as its own process, as operators run it. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from './paths.js';

export const SIGNET_MAIN = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock time until it exited. */
  ms: number;
}

/**
 * `signet ARGS` (never spawnSync: an in-process server must keep serving meanwhile). `env` is
 * added to this process's environment, or is the whole environment (with PATH) when `isolated`,
 * so that variables of the test run (say NOTARY_SIGNER_*) cannot leak in. Killed after `timeoutMs`.
 */
export function runSignet(
  args: readonly string[],
  env: Record<string, string> = {},
  opts: { isolated?: boolean; timeoutMs?: number } = {},
): Promise<CliResult> {
  const started = Date.now();
  const base = opts.isolated ? { PATH: process.env['PATH'] ?? '' } : process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SIGNET_MAIN, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}
