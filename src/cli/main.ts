#!/usr/bin/env node
/**
 * The `signet` command. It loads only what the command needs: the client commands (`trust`,
 * `verify`, `cosign`) never load the server, the database drivers or express, so a pipeline step starts
 * in the time Node itself takes; `--version` loads nothing at all.
 */
import { existsSync } from 'node:fs';
import nodeModule from 'node:module';
import { exitWithError } from './failure.js';

// Node 22.1 and later keep compiled code between runs (a no-op on Node 20, which lacks it).
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (command === '--version' && argv.length === 1) {
    const { version } = await import('./args.js');
    console.log(`signet ${version()}`);
    return 0;
  }
  if (command === 'help' && (argv[1] === 'trust' || argv[1] === 'verify' || argv[1] === 'gate' || argv[1] === 'cosign'))
    return main([...argv.slice(1), '--help']);
  if (command === 'trust' || command === 'verify') {
    // The bundle `npm run build` makes of trust-command.js, when there is one (it loads faster).
    const bundle = new URL('./trust-command.bundle.js', import.meta.url);
    const { runTrustCommand } = (existsSync(bundle) ? await import(bundle.href) : await import('./trust-command.js')) as typeof import('./trust-command.js');
    return runTrustCommand(argv);
  }
  if (command === 'cosign') {
    const bundle = new URL('./cosign-command.bundle.js', import.meta.url);
    const { runCosignCommand } = (existsSync(bundle) ? await import(bundle.href) : await import('./cosign-command.js')) as typeof import('./cosign-command.js');
    return runCosignCommand(argv);
  }
  if (command === 'gate') {
    const { runGateCommand } = await import('./gate-command.js');
    return runGateCommand(argv);
  }
  const { runServerCommand } = await import('./server-commands.js');
  return runServerCommand(argv);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  // Usage and configuration mistakes exit 2; failures of the work itself exit 1.
  (error: unknown) => exitWithError(error),
);
