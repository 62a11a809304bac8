/** How a command that failed ends: its reason on stderr, exit 2 for configuration mistakes, 1 otherwise. */
import { createRequire } from 'node:module';
import { signetErrorCode } from '../tuf/core/signet-error.js';
import { usageMessage, type UsageError } from './args.js';

/**
 * Error codes that are the operator's mistake, by how they are shown: exit 2. A key-encryption
 * key that is not the store's is a configuration mistake too. Any other failure exits 1, its
 * message prefixed with `signet: `.
 */
const CONFIGURATION_MISTAKES: Readonly<Record<string, (error: Error) => string>> = {
  USAGE: (e) => usageMessage(e as UsageError),
  CONFIG: (e) => e.message,
  DATA_DIR_UNUSABLE: (e) => e.message,
  KEK_MISMATCH: (e) => `signet: ${e.message}`,
  POLICY: (e) => `signet gate: ${e.message}`,
};

export function exitWithError(error: unknown): void {
  const code = signetErrorCode(error);
  const show = code !== undefined && Object.hasOwn(CONFIGURATION_MISTAKES, code) ? CONFIGURATION_MISTAKES[code] : undefined;
  const message = show ? show(error as Error) : `signet: ${error instanceof Error ? error.message : String(error)}`;
  const exit = show ? 2 : 1;
  console.error(message);
  process.exitCode = exit;
  // A serving worker tells its supervising process why, so that it stops instead of restarting it.
  // The IPC channel alone would keep a worker alive, so it is closed once the message is out.
  // node:cluster is loaded only here, when a command has failed: every command imports this file.
  const cluster = createRequire(import.meta.url)('node:cluster') as typeof import('node:cluster').default;
  if (cluster.isWorker && process.connected) process.send?.({ failed: message, code: exit }, () => process.disconnect());
  // Nothing left open by the failed work may keep the process alive; the delay lets logs flush.
  setTimeout(() => process.exit(exit), 2000).unref();
}
