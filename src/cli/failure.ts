/** How a command that failed ends: its reason on stderr, exit 2 for configuration mistakes, 1 otherwise. */
import cluster from 'node:cluster';
import { ConfigError } from '../config.js';
import { KeyEncryptionKeyMismatchError } from '../service/key-encryption-binding.js';
import { DataDirError } from '../storage/database.js';
import { UsageError, usageMessage } from './args.js';

export function exitWithError(error: unknown): void {
  // A key-encryption key that is not the store's is a configuration mistake too.
  const isConfig =
    error instanceof ConfigError || error instanceof UsageError || error instanceof KeyEncryptionKeyMismatchError || error instanceof DataDirError;
  const message =
    error instanceof UsageError
      ? usageMessage(error)
      : error instanceof ConfigError || error instanceof DataDirError
        ? error.message
        : `signet: ${error instanceof Error ? error.message : String(error)}`;
  const code = isConfig ? 2 : 1;
  console.error(message);
  process.exitCode = code;
  // A serving worker tells its supervising process why, so that it stops instead of restarting it.
  // The IPC channel alone would keep a worker alive, so it is closed once the message is out.
  if (cluster.isWorker && process.connected) process.send?.({ failed: message, code }, () => process.disconnect());
  // Nothing left open by the failed work may keep the process alive; the delay lets logs flush.
  setTimeout(() => process.exit(code), 2000).unref();
}
