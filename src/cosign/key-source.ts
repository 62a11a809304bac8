/**
 * Where cosign keys and passwords come from, as cosign takes them: `--key` is a file path or
 * `env://NAME` (the key's text in a variable, as CI secrets usually are); the password is
 * COSIGN_PASSWORD when it is set (even empty, as cosign reads it with LookupEnv), else a prompt on
 * a terminal, else PASSWORD_REQUIRED (never a hang on a pipe). KMS and hardware-key URIs are not
 * supported and say so.
 */
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { readHidden, type PassphraseTerminal } from '../client/keys/passphrase.js';
import { KeyStoreError } from '../client/keys/errors.js';
import { CosignError } from './errors.js';
import { readCosignPrivateKey, readCosignPublicKey } from './keys.js';

export const PASSWORD_VARIABLE = 'COSIGN_PASSWORD';
const MAX_KEY_FILE = 64 * 1024;

export interface KeySourceOptions {
  env?: NodeJS.ProcessEnv;
  /** The terminal to prompt on; default stdin/stderr when stdin is a TTY; `false` for none. */
  terminal?: PassphraseTerminal | false;
}

function terminalOf(options: KeySourceOptions): PassphraseTerminal | undefined {
  if (options.terminal === false) return undefined;
  return options.terminal ?? (process.stdin.isTTY ? { input: process.stdin, output: process.stderr } : undefined);
}

/** The text a `--key` reference names, and a name for it in messages. */
export async function readKeyReference(reference: string, options: KeySourceOptions = {}): Promise<{ text: string; what: string }> {
  const env = options.env ?? process.env;
  if (reference.startsWith('env://')) {
    const name = reference.slice('env://'.length);
    const value = env[name];
    if (!name || !value) throw new CosignError('KEY_NOT_FOUND', `${reference}: the variable ${name || '(none)'} is not set or empty`);
    return { text: value, what: reference };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(reference)) {
    throw new CosignError('BAD_INPUT', `${reference.split('://')[0]}:// keys (KMS, PKCS#11) are not supported; give a key file or env://NAME`);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(reference);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CosignError('KEY_NOT_FOUND', `${reference}: ${code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? 'error'})`}`);
  }
  if (bytes.length > MAX_KEY_FILE) throw new CosignError('KEY_UNREADABLE', `${reference}: larger than ${MAX_KEY_FILE} bytes, not a key file`);
  return { text: bytes.toString('utf8'), what: reference };
}

/** The password for an existing key (`create: false`) or a new one (asked twice on a terminal). */
export async function cosignPassword(what: string, create: boolean, options: KeySourceOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const set = env[PASSWORD_VARIABLE];
  if (set !== undefined) return set;
  const terminal = terminalOf(options);
  if (!terminal) throw new CosignError('PASSWORD_REQUIRED', `${what}: a password is needed: set ${PASSWORD_VARIABLE} (it may be empty), or run on a terminal`);
  try {
    const first = await readHidden(terminal, 'Enter password for private key: ');
    if (!create) return first;
    const again = await readHidden(terminal, 'Enter password for private key again: ');
    if (again !== first) throw new CosignError('PASSWORD_REQUIRED', 'the passwords do not match');
    return first;
  } catch (error) {
    if (error instanceof KeyStoreError) throw new CosignError('PASSWORD_REQUIRED', error.message);
    throw error;
  }
}

/** A signing key from `--key` (file or env://), opened with its password. */
export async function loadSigningKey(reference: string, options: KeySourceOptions = {}): Promise<KeyObject> {
  const { text, what } = await readKeyReference(reference, options);
  const password = await cosignPassword(what, false, options);
  return readCosignPrivateKey(text, password, what);
}

/** A verification key from `--key` (file or env://). */
export async function loadVerificationKey(reference: string, options: KeySourceOptions = {}): Promise<KeyObject> {
  const { text, what } = await readKeyReference(reference, options);
  return readCosignPublicKey(text, what);
}
