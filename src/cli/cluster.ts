/**
 * Several serving processes on one port (node:cluster), so every core serves. The primary runs
 * migrations once, forks the workers, restarts one that dies, and stops them all on SIGTERM.
 * Workers share only the database: caches stay correct through change notifications.
 */
import cluster, { type Worker } from 'node:cluster';
import { type Config, SETTING_NAMES } from '../config.js';
import type { Logger } from '../log.js';
import { checkStartupFiles } from '../server.js';
import { loadKeyEncryptionKey } from '../signing/key-encryption.js';
import { openDatabase, prepareDataDir } from '../storage/database.js';
import { migrate } from '../storage/migrate.js';
import { Stores } from '../storage/stores.js';
import { bindKeyEncryptionKey } from '../service/key-encryption-binding.js';

export async function runPrimary(config: Config, logger: Logger, workers: number): Promise<void> {
  // What would stop every worker is found here once, before anything is opened or forked.
  checkStartupFiles(config, logger);
  if (!config.SIGNET_KEY_ENCRYPTION_KEY) prepareDataDir(config.SIGNET_DATA_DIR, SETTING_NAMES.database.dataDir);
  const database = await openDatabase({
    url: config.DATABASE_URL,
    names: SETTING_NAMES.database,
    dataDir: config.SIGNET_DATA_DIR,
    poolSize: 1,
    connectRetrySeconds: config.SIGNET_DB_CONNECT_TIMEOUT,
    log: logger,
  });
  try {
    await migrate(database);
    // Create the key-encryption key file (if used) before workers race to, and refuse a KEK
    // that is not the store's here, once, rather than in every worker.
    await bindKeyEncryptionKey(new Stores(database.db), loadKeyEncryptionKey(config.SIGNET_KEY_ENCRYPTION_KEY, config.SIGNET_DATA_DIR, SETTING_NAMES.kek));
  } finally {
    await database.close();
  }

  let stopping = false;
  let announced = false;
  // A replacement that dies before listening is retried ever more slowly, not in a tight loop.
  let restartDelay = 0;
  const listened = new WeakSet<Worker>();
  const reasons = new WeakMap<Worker, { failed: string; code: number }>();
  const fork = () => {
    const worker = cluster.fork();
    worker.on('message', (msg: { listening?: string; failed?: string; code?: number }) => {
      if (msg.failed) reasons.set(worker, { failed: msg.failed, code: msg.code ?? 1 });
      if (msg.listening) {
        listened.add(worker);
        restartDelay = 0;
        if (!announced) {
          announced = true;
          console.log(`signet listening on ${msg.listening}`);
          logger.info('signet workers started', { workers, url: msg.listening });
        }
      }
    });
  };
  const stop = (signal: NodeJS.Signals | null, exitCode = 0) => {
    stopping = true;
    if (signal) logger.info('shutting down', { signal });
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
    const timer = setTimeout(() => process.exit(exitCode), 10_000);
    timer.unref();
    const done = () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
    };
    cluster.on('exit', done);
    done();
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const reason = reasons.get(worker);
    if (!announced && !listened.has(worker)) {
      // Failing before any worker served is a start-up failure: restarting would fail the same way.
      const why = reason?.failed.replace(/^signet: /, '') ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
      console.error(`signet: serving process ${worker.process.pid} failed to start: ${why}`);
      stop(null, reason?.code ?? (code > 0 ? code : 1));
      return;
    }
    const delay = listened.has(worker) ? 0 : (restartDelay = Math.min(Math.max(restartDelay * 2, 1000), 30_000));
    logger.error('worker exited; starting another', { pid: worker.process.pid, code, signal, ...(reason ? { reason: reason.failed } : {}), delayMs: delay });
    setTimeout(() => {
      if (!stopping) fork();
    }, delay);
  });
  for (let i = 0; i < workers; i++) fork();
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

export const isWorker = () => cluster.isWorker;
