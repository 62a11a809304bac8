/**
 * Several serving processes on one port (node:cluster), so every core serves. The primary runs
 * migrations once, forks the workers, restarts one that dies, and stops them all on SIGTERM.
 * Workers share only the database: caches stay correct through change notifications.
 */
import cluster from 'node:cluster';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { loadKeyEncryptionKey } from '../signing/key-encryption.js';
import { openDatabase } from '../storage/database.js';
import { migrate } from '../storage/migrate.js';
import { bindKeyEncryptionKey } from '../service/key-encryption-binding.js';

export async function runPrimary(config: Config, logger: Logger, workers: number): Promise<void> {
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.SIGNET_DATA_DIR });
  try {
    await migrate(database);
    // Create the key-encryption key file (if used) before workers race to, and refuse a KEK
    // that is not the store's here, once, rather than in every worker.
    await bindKeyEncryptionKey(database.db, loadKeyEncryptionKey(config.SIGNET_KEY_ENCRYPTION_KEY, config.SIGNET_DATA_DIR));
  } finally {
    await database.close();
  }

  let stopping = false;
  let announced = false;
  const fork = () => {
    const worker = cluster.fork();
    worker.on('message', (msg: { listening?: string }) => {
      if (msg.listening && !announced) {
        announced = true;
        console.log(`signet listening on ${msg.listening}`);
        logger.info('signet workers started', { workers, url: msg.listening });
      }
    });
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    logger.error('worker exited; starting another', { pid: worker.process.pid, code, signal });
    fork();
  });
  for (let i = 0; i < workers; i++) fork();
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    logger.info('shutting down', { signal });
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
    const timer = setTimeout(() => process.exit(0), 10_000);
    timer.unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

export const isWorker = () => cluster.isWorker;
