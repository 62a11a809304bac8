/**
 * The `signet import` command line: arguments, passphrases, progress on stderr, the summary
 * (or --json) on stdout, and the exit code (0 all imported, 1 something refused, in conflict or
 * not importable, 2 usage or configuration error).
 */
import { parseCommand, UsageError, usageMessage, type CommandSpec } from './args.js';
import { ConfigError, loadConfig, SETTING_NAMES } from '../config.js';
import { createLogger } from '../log.js';
import { openServices } from '../server.js';
import { loadKeyEncryptionKey } from '../signing/key-encryption.js';
import { passphraseEnvName, runImport, type ImportProgress, type ImportReport } from '../import/importer.js';
import { SourceError, openServerSource, openSignerSource, sourceLabel, type ServerSource, type SignerSource } from '../import/source.js';

export const IMPORT_USAGE = `usage: signet import --from postgres://…/notaryserver [--signer postgres://…/notarysigner]
                     (or mysql://user:password@host:port/notaryserver, or notary's user:password@tcp(host:port)/db)
                     [--passphrase ALIAS=VALUE]... [--gun GUN] [--dry-run] [--json] [--source-timezone TZ]

Copies a notary-server deployment into Signet's database (DATABASE_URL, or the embedded store):
every version of every repository's metadata, checked (sha256, version, signatures) before it is
written; the changefeed; and, with --signer, notary-signer's timestamp and snapshot keys, whose
passphrases come from --passphrase or NOTARY_SIGNER_<ALIAS> as for notary-signer itself.
Safe to run again: what is already there is skipped. Nothing is written with --dry-run.
Exit status: 0 everything imported, 1 files refused, conflicts or keys not imported, 2 usage error.`;

const IMPORT_SPEC: CommandSpec = {
  name: 'import',
  usage: IMPORT_USAGE,
  options: {
    from: { type: 'string' },
    signer: { type: 'string' },
    gun: { type: 'string' },
    'source-timezone': { type: 'string' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
    passphrase: { type: 'string', multiple: true },
  },
};

export interface ImportArguments {
  from: string;
  signer?: string | undefined;
  passphrases: Map<string, string>;
  gun?: string | undefined;
  dryRun: boolean;
  json: boolean;
  sourceTimezone: string;
}

/** The arguments of `signet import`; null when --help or --version was answered. Throws UsageError. */
export function parseImportArguments(args: readonly string[]): ImportArguments | null {
  const a = parseCommand(IMPORT_SPEC, args);
  if (!a) return null;
  const usage = (message: string) => new UsageError(message, IMPORT_SPEC.name);
  const passphrases = new Map<string, string>();
  for (const pair of a.strings('passphrase')) {
    const at = pair.indexOf('=');
    if (at <= 0) throw usage('--passphrase takes ALIAS=VALUE');
    passphrases.set(pair.slice(0, at).toLowerCase(), pair.slice(at + 1));
  }
  const from = a.string('from');
  if (!from) throw usage('--from is required: the notary-server database URL');
  const gun = a.string('gun');
  if (gun === '') throw usage('--gun needs a repository name');
  return {
    from,
    signer: a.string('signer'),
    passphrases,
    gun,
    dryRun: a.flag('dry-run'),
    json: a.flag('json'),
    sourceTimezone: a.string('source-timezone') ?? 'UTC',
  };
}

const n = (x: number) => x.toLocaleString('en-US');

function progressLine(p: ImportProgress, dryRun: boolean): string {
  let line = `${dryRun ? 'checked' : 'imported'} ${n(p.repositoriesDone)}/${n(p.repositoriesTotal)} repositories, ${n(p.filesImported)} files`;
  if (dryRun) line += ' to import';
  if (p.filesExisting) line += `, ${n(p.filesExisting)} already present`;
  if (p.filesRefused) line += `, ${n(p.filesRefused)} refused`;
  if (p.conflicts) line += `, ${n(p.conflicts)} conflicts`;
  return line;
}

const LIST_LIMIT = 50;

function listed<T>(items: readonly T[], show: (item: T) => string): string[] {
  const lines = items.slice(0, LIST_LIMIT).map(show);
  if (items.length > LIST_LIMIT) lines.push(`  … and ${n(items.length - LIST_LIMIT)} more (see --json)`);
  return lines;
}

export function formatReport(r: ImportReport): string {
  const would = r.dryRun ? 'would be imported' : 'imported';
  const lines = [
    r.dryRun ? 'signet import: DRY RUN, nothing was written' : 'signet import: done',
    `repositories: ${n(r.repositories.total)} (${n(r.repositories.imported)} ${would}, ${n(r.repositories.upToDate)} already up to date, ${n(r.repositories.conflicted)} in conflict and left untouched)`,
    `files: ${n(r.files.source)} in notary: ${n(r.files.imported)} ${would}, ${n(r.files.existing)} already present, ${n(r.files.refused)} refused, ${n(r.files.unverified)} not verifiable`,
    `changefeed: ${n(r.changefeed.source)} records: ${n(r.changefeed.imported)} ${would}, ${n(r.changefeed.existing)} already present` +
      (r.changefeed.skipped ? `, ${n(r.changefeed.skipped)} skipped` : '') +
      (r.changefeed.idsPreserved === null ? '' : r.changefeed.idsPreserved ? ' (change IDs kept)' : ' (new change IDs: the changefeed was not empty)'),
    r.keys.read
      ? `keys: ${n(r.keys.source)} in notary-signer: ${n(r.keys.imported)} ${would}, ${n(r.keys.existing)} already present, ${n(r.keys.failed)} not importable, ${n(r.keys.skippedRole)} skipped (not timestamp/snapshot)`
      : 'keys: not read (no --signer)',
    `took ${(r.elapsedMs / 1000).toFixed(1)} s (${n(r.filesPerSecond)} files/s)`,
  ];
  lines.push(...listed(r.refused, (p) => `REFUSED ${p.gun} ${p.role} v${p.version}: ${p.reason}`));
  lines.push(
    ...listed(r.conflicts, (p) =>
      'kind' in p ? `CONFLICT ${p.gun} ${p.role} key ${p.keyId}: ${p.reason}` : `CONFLICT ${p.gun} ${p.role} v${p.version}: ${p.reason}`,
    ),
  );
  lines.push(
    ...listed(r.missingPassphrases, (m) => `MISSING PASSPHRASE alias ${m.alias} (--passphrase ${m.alias}=… or ${m.env}): ${n(m.keys)} keys not imported`),
  );
  lines.push(
    ...listed(
      r.keyProblems.filter((k) => !k.reason.startsWith('no passphrase')),
      (k) => `KEY ${k.gun} ${k.role} ${k.keyId}: ${k.reason}`,
    ),
  );
  lines.push(...listed(r.unverified, (p) => `UNVERIFIED ${p.gun} ${p.role} v${p.version}: ${p.reason}`));
  lines.push(
    ...listed(
      r.withoutTimestampKey,
      (g) => `NO TIMESTAMP KEY ${g}: Signet does not hold the timestamp key its root lists; publishing needs \`notary key rotate ${g} timestamp -r\``,
    ),
  );
  for (const note of r.notes) lines.push(`NOTE ${note}`);
  return lines.join('\n');
}

export function importFailed(r: ImportReport): boolean {
  return r.files.refused > 0 || r.conflicts.length > 0 || r.keys.failed > 0;
}

/** Run `signet import` with its arguments; resolves to the exit code. */
export async function importCommand(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed: ImportArguments | null;
  let config;
  try {
    parsed = parseImportArguments(args);
    if (!parsed) return 0;
    config = loadConfig(env);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(usageMessage(e));
      return 2;
    }
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  const opts = parsed;
  const passphrase = (alias: string): string | undefined => opts.passphrases.get(alias.toLowerCase()) || env[passphraseEnvName(alias)] || undefined;

  let server: ServerSource | undefined;
  let signer: SignerSource | undefined;
  try {
    server = await openServerSource(opts.from, opts.sourceTimezone);
    if (opts.signer) signer = await openSignerSource(opts.signer, opts.sourceTimezone);
  } catch (e) {
    await server?.close();
    if (e instanceof SourceError) {
      console.error(`signet import: ${e.message}`);
      return 2;
    }
    throw e;
  }

  try {
    const { database, context, listener } = await openServices(config, createLogger('error'));
    try {
      const kek = loadKeyEncryptionKey(config.SIGNET_KEY_ENCRYPTION_KEY, config.SIGNET_DATA_DIR, SETTING_NAMES.kek);
      let last = 0;
      const report = await runImport(
        {
          server,
          signer,
          passphrase,
          gun: opts.gun,
          dryRun: opts.dryRun,
          sourceLabel: sourceLabel(opts.from),
          onProgress: (p) => {
            const now = Date.now();
            if (now - last < 1000 && p.repositoriesDone < p.repositoriesTotal) return;
            last = now;
            process.stderr.write(`${progressLine(p, opts.dryRun)}\n`);
          },
        },
        { ctx: context, kek },
      );
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatReport(report));
      return importFailed(report) ? 1 : 0;
    } finally {
      await listener?.close();
      await database.close();
    }
  } finally {
    await server.close();
    await signer?.close();
  }
}
