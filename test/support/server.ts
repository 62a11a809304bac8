/** Start Signet for a test: in this process, or as a separate process (as operators run it). */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { projectRoot } from './paths.js';

export interface TestServer extends RunningServer {
  database: TestDatabase;
  config: Config;
}

export function testConfig(db: TestDatabase, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    SIGNET_PORT: '0',
    SIGNET_DATA_DIR: db.dataDir,
    SIGNET_LOG_LEVEL: 'silent',
    // Background expiry scans would write on their own schedule; tests that want one ask for it.
    SIGNET_EXPIRY_SCAN_INTERVAL: '0',
    ...(db.url ? { DATABASE_URL: db.url } : {}),
    ...overrides,
  });
}

/** Signet in this process on a fresh database; `close()` also drops the database. */
export async function startTestServer(overrides: Record<string, string> = {}, existing?: TestDatabase): Promise<TestServer> {
  const database = existing ?? (await createTestDatabase());
  let config: Config;
  let server: RunningServer;
  try {
    config = testConfig(database, overrides);
    server = await startServer(config, createLogger('silent'));
  } catch (e) {
    if (!existing) await database.drop();
    throw e;
  }
  return {
    ...server,
    database,
    config,
    async close() {
      await server.close();
      if (!existing) await database.drop();
    },
  };
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `signet serve` as its own process; resolves once it listens. `onOutput` hears all it has printed so far, as it comes. */
export async function spawnServer(env: Record<string, string>, options: { onOutput?: (output: string) => void } = {}): Promise<ServerProcess> {
  const main = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');
  const child = spawn(process.execPath, [main, 'serve'], {
    env: { ...process.env, SIGNET_PORT: '0', SIGNET_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Never leave a server behind, whatever happens to the test process.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.removeListener('exit', reap));
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`signet did not start:\n${output}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      options.onOutput?.(output);
      const m = /^signet listening on (\S+)$/m.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`signet exited with ${code}:\n${output}`));
    });
  });
  return {
    url,
    child,
    output: () => output,
    stop: (signal = 'SIGTERM') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}
