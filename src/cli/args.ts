/**
 * Argument parsing shared by every `signet` command: node:util parseArgs in strict mode, with
 * `--help`/`-h` and `--version` on every command, and every mistake reported as a UsageError
 * (exit 2) that names all the unknown options and extra arguments at once.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SignetError } from '../tuf/core/signet-error.js';

/** A mistake in the command line; `command` names the command whose --help to point to. */
export class UsageError extends SignetError {
  readonly code = 'USAGE';
  override name = 'UsageError';
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
  }
}

/** What the user sees for a usage error: one line, naming the mistake and where to read on. */
export function usageMessage(e: UsageError): string {
  const command = e.command ? `signet ${e.command}` : 'signet';
  return `${command}: ${e.message}; see \`${command} --help\``;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
}

export interface CommandSpec {
  /** The words naming the command after `signet`, e.g. `repos show`. */
  name: string;
  /** The whole --help text. */
  usage: string;
  options?: Record<string, OptionSpec>;
  /** Positional arguments in order; a trailing `?` marks an optional one, and a last `...?` any number more. */
  positionals?: string[];
}

export interface Args {
  positionals: string[];
  string(name: string): string | undefined;
  strings(name: string): string[];
  flag(name: string): boolean;
}

/** Signet's version, from the package.json above this file (src/ and dist/src/ alike). */
export function version(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      const parsed = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
      if (parsed.name === 'signet' && parsed.version) return parsed.version;
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

const COMMON: Record<string, OptionSpec> = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } };

/**
 * Parse `argv` for `spec`. Returns null when --help or --version was asked for (already
 * printed; the command must do nothing else and exit 0). Throws UsageError for any mistake.
 */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): Args | null {
  const declared = spec.options ?? {};
  const options = { ...declared, ...COMMON };
  // A negative number is a value, never an option: `--limit -5` is read as `--limit=-5` so that
  // it is refused for being out of range rather than as a missing value.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && declared[a.slice(2)]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      args.push(`${a}=${next}`);
      i++;
    } else args.push(a);
  }

  // A lenient pass first: --help wins over every other mistake, and all mistakes are collected
  // into one message, where the strict parser would stop at the first.
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  const problems: string[] = [];
  const positionals: string[] = [];
  let help = false;
  let showVersion = false;
  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    if (t.name === 'help') help = true;
    else if (t.name === 'version') showVersion = true;
    else if (!declared[t.name]) problems.push(`unknown option ${t.rawName}`);
    else if (declared[t.name]!.type === 'string' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('-')))) {
      problems.push(`${t.rawName} needs a value`);
    } else if (declared[t.name]!.type === 'boolean' && t.inlineValue) problems.push(`${t.rawName} takes no value`);
  }
  if (help) {
    console.log(spec.usage);
    return null;
  }
  if (showVersion) {
    console.log(`signet ${version()}`);
    return null;
  }
  const names = spec.positionals ?? [];
  const variadic = names.at(-1) === '...?';
  const extra = variadic ? [] : positionals.slice(names.length);
  if (extra.length) problems.push(`unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((a) => JSON.stringify(a)).join(' ')}`);
  const missing = names.slice(positionals.length).filter((n) => !n.endsWith('?'));
  if (missing.length) problems.push(`missing ${missing.join(' and ')}`);
  if (problems.length) throw new UsageError(problems.join('; '), spec.name);

  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: true }));
  } catch (e) {
    throw new UsageError((e as Error).message, spec.name);
  }
  return {
    positionals,
    string(name) {
      const v = values[name];
      const last = Array.isArray(v) ? v.at(-1) : v;
      return typeof last === 'string' ? last : undefined;
    },
    strings(name) {
      const v = values[name];
      return (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === 'string');
    },
    flag(name) {
      return values[name] === true;
    },
  };
}
