/**
 * Where key passphrases come from, as docker and notary look for them: first the environment,
 * then a prompt on a terminal, else a typed error (never a hang waiting on a pipe).
 *
 * docker (`cli/trust` GetPassphraseRetriever): DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE for root keys,
 * DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE for every other key. notary (`cmd/notary/main.go`):
 * NOTARY_ROOT_PASSPHRASE, NOTARY_TARGETS_PASSPHRASE, NOTARY_SNAPSHOT_PASSPHRASE, and
 * NOTARY_DELEGATION_PASSPHRASE for any role that is not a base role (a delegation, or a key named
 * by `docker trust key generate`); nothing for timestamp keys. docker's variable is tried before
 * notary's, and an empty variable counts as unset, as in both tools.
 *
 * The prompt is notary's: no echo, the answer trimmed, and for a new key at least 8 characters
 * and asked twice; answers are remembered per role for the life of the source.
 */
import { KeyStoreError } from './errors.js';

export interface PassphraseOptions {
  /** A passphrase for a new key (asked twice on a terminal), rather than for an existing one. */
  create: boolean;
  /** 0 for the first ask; more after the previous answer did not decrypt the key. */
  attempt?: number;
}

export interface PassphraseSource {
  /** The passphrase for the key `keyId` of `role`. Rejects with PASSPHRASE_REQUIRED when there is none. */
  get(role: string, keyId: string, opts: PassphraseOptions): Promise<string>;
}

/** A terminal to prompt on (process.stdin / process.stderr, or a stand-in in tests). */
export interface PassphraseTerminal {
  input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };
  output: NodeJS.WritableStream;
}

const BASE_ROLES = new Set(['root', 'targets', 'snapshot', 'timestamp']);

/** The environment variables read for a key of `role`, in the order they are tried. */
export function passphraseVariables(role: string): string[] {
  if (role === 'root') return ['DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE', 'NOTARY_ROOT_PASSPHRASE'];
  const docker = 'DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE';
  if (role === 'targets' || role === 'snapshot') return [docker, `NOTARY_${role.toUpperCase()}_PASSPHRASE`];
  if (BASE_ROLES.has(role)) return [docker];
  return [docker, 'NOTARY_DELEGATION_PASSPHRASE'];
}

const MAX_PROMPTS = 3;
const MIN_NEW_LENGTH = 8;

/** Read one line from a raw-mode terminal without echoing it. */
export function readHidden(terminal: PassphraseTerminal, prompt: string): Promise<string> {
  const { input, output } = terminal;
  output.write(prompt);
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (error: KeyStoreError | null) => {
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.setRawMode?.(false);
      input.pause();
      output.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onEnd = () => finish(new KeyStoreError('PASSPHRASE_REQUIRED', 'the terminal closed before a passphrase was entered'));
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') return finish(null);
        if (ch === '\u0003') return finish(new KeyStoreError('PASSPHRASE_REQUIRED', 'passphrase entry cancelled'));
        if (ch === '\u0004' && typed === '') return onEnd();
        if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else if (ch >= ' ') typed += ch;
      }
    };
    input.setRawMode?.(true);
    input.on('data', onData);
    input.once('end', onEnd);
    input.resume();
  });
}

function defaultTerminal(): PassphraseTerminal | undefined {
  return process.stdin.isTTY ? { input: process.stdin, output: process.stderr } : undefined;
}

/**
 * Passphrases from `env` (docker's then notary's variables), else from prompts on `tty` (by
 * default stdin/stderr when stdin is a terminal; `false` for none).
 */
export function envPassphrases(env: NodeJS.ProcessEnv = process.env, tty?: PassphraseTerminal | false): PassphraseSource {
  const terminal = tty === false ? undefined : (tty ?? defaultTerminal());
  const remembered = new Map<string, string>();
  const short = (keyId: string) => keyId.slice(0, 7);

  async function prompt(role: string, keyId: string, opts: PassphraseOptions): Promise<string> {
    const t = terminal!;
    const label = `${role} key${keyId ? ` with ID ${short(keyId)}` : ''}`;
    if ((opts.attempt ?? 0) > 0 && !opts.create) t.output.write('Passphrase incorrect. Please retry.\n');
    for (let i = 0; i < MAX_PROMPTS; i++) {
      const first = (await readHidden(t, `Enter passphrase for ${opts.create ? 'new ' : ''}${label}: `)).trim();
      if (!opts.create) {
        if (first) return first;
        continue;
      }
      if (first.length < MIN_NEW_LENGTH) {
        t.output.write(`Passphrase is too short (at least ${MIN_NEW_LENGTH} characters). Please retry.\n`);
        continue;
      }
      const again = (await readHidden(t, `Repeat passphrase for new ${label}: `)).trim();
      if (again === first) return first;
      t.output.write('Passphrases do not match. Please retry.\n');
    }
    throw new KeyStoreError('PASSPHRASE_REQUIRED', `no usable passphrase entered for the ${label}`);
  }

  return {
    async get(role, keyId, opts) {
      for (const name of passphraseVariables(role)) {
        const value = env[name];
        if (value) return value;
      }
      if (!terminal) {
        const names = passphraseVariables(role).join(' or ');
        throw new KeyStoreError(
          'PASSPHRASE_REQUIRED',
          `a passphrase is needed for the ${role} key${keyId ? ` ${keyId}` : ''}: set ${names}, or run on a terminal`,
        );
      }
      const cached = remembered.get(role);
      if (cached !== undefined && !(opts.attempt ?? 0)) return cached;
      const value = await prompt(role, keyId, opts);
      remembered.set(role, value);
      return value;
    },
  };
}

/** The same passphrase for every key (for callers that already hold one, and tests). */
export function constantPassphrase(passphrase: string): PassphraseSource {
  return { get: async () => passphrase };
}
