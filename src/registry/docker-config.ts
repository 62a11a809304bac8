/**
 * Registry credentials the way the docker CLI finds them, in `$DOCKER_CONFIG/config.json`
 * (default `~/.docker/config.json`):
 *
 * - the key for a registry is its host (with port); Docker Hub's is `https://index.docker.io/v1/`;
 * - `credHelpers[key]`, else `credsStore`, names a helper: `docker-credential-<name> get` reads
 *   the key on stdin and prints `{"ServerURL","Username","Secret"}` (username `<token>` means the
 *   secret is an identity token); "credentials not found" from it means no credentials, not an error;
 * - without a helper, `auths[key]`, else the first `auths` entry whose key reduces to that host
 *   (`https://host`, `http://host/v1/`: docker's legacy keys); `auth` (base64 `user:password`)
 *   wins over `username`/`password`; `identitytoken` and `registrytoken` are kept as such.
 *
 * A missing config file means no credentials, as for docker. A file that cannot be read or is
 * not JSON, or a helper that is missing or fails, is an error that names the file or helper and
 * never the secret.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CodedError } from '../tuf/core/signet-error.js';
import { DOCKER_HUB } from './reference.js';

export type CredentialsErrorCode = 'DOCKER_CONFIG' | 'CREDENTIALS';

export class CredentialsError extends CodedError<CredentialsErrorCode> {
  override name = 'CredentialsError';
}

export interface RegistryCredentials {
  username?: string;
  password?: string;
  /** An OAuth refresh token (docker login with an identity provider): traded at the token realm. */
  identityToken?: string;
  /** A bearer token sent to the registry as is. */
  registryToken?: string;
}

/** Where credentials for a registry host come from; `undefined` = anonymous. */
export interface CredentialSource {
  get(registry: string): Promise<RegistryCredentials | undefined>;
}

const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const HELPER_PREFIX = 'docker-credential-';
const HELPER_TIMEOUT_MS = 30_000;
const TOKEN_USERNAME = '<token>';

/** `$DOCKER_CONFIG`, else `~/.docker`. */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['DOCKER_CONFIG'] || path.join(os.homedir(), '.docker');
}

/** The key docker stores a registry's credentials under. */
export function credentialKey(registry: string): string {
  return registry === DOCKER_HUB || registry === 'index.docker.io' ? DOCKER_HUB_KEY : registry;
}

/** docker's ConvertToHostname: `https://host:port/v1/` → `host:port`; a plain key loses any path. */
export function keyHostname(key: string): string {
  if (key.includes('://')) {
    try {
      const u = new URL(key);
      if (u.host) return u.host;
    } catch {
      // fall through to the plain split below, on what follows the scheme
    }
    return key.slice(key.indexOf('://') + 3).split('/')[0]!;
  }
  return key.split('/')[0]!;
}

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
  registrytoken?: unknown;
}

interface ConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, unknown>;
  credsStore?: unknown;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export interface DockerConfigOptions {
  /** The directory holding config.json; default `dockerConfigDir()`. */
  dir?: string;
  /** Environment the helpers run in (PATH finds them); default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Credentials from a docker config directory; the file is read once, on first use. */
export class DockerConfigCredentials implements CredentialSource {
  readonly file: string;
  private readonly env: NodeJS.ProcessEnv;
  private config: ConfigFile | undefined;

  constructor(options: DockerConfigOptions = {}) {
    this.file = path.join(options.dir ?? dockerConfigDir(options.env), 'config.json');
    this.env = options.env ?? process.env;
  }

  private load(): ConfigFile {
    if (this.config) return this.config;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return (this.config = {});
      throw new CredentialsError('DOCKER_CONFIG', `cannot read docker config ${this.file}: ${code ?? (e as Error).message}`, { cause: e });
    }
    let parsed: unknown;
    try {
      parsed = text.trim() === '' ? {} : JSON.parse(text);
    } catch (e) {
      throw new CredentialsError('DOCKER_CONFIG', `docker config ${this.file} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new CredentialsError('DOCKER_CONFIG', `docker config ${this.file} is not a JSON object`);
    }
    const c = parsed as ConfigFile;
    for (const field of ['auths', 'credHelpers'] as const) {
      const v = c[field];
      if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) {
        throw new CredentialsError('DOCKER_CONFIG', `docker config ${this.file}: "${field}" is not an object`);
      }
    }
    return (this.config = c);
  }

  /** The helper docker would ask for this key: `credHelpers[key]`, else `credsStore`. */
  helperFor(registry: string): string | undefined {
    const c = this.load();
    const key = credentialKey(registry);
    return str(c.credHelpers?.[key]) ?? str(c.credsStore);
  }

  async get(registry: string): Promise<RegistryCredentials | undefined> {
    const key = credentialKey(registry);
    const helper = this.helperFor(registry);
    if (helper) return this.fromHelper(helper, key);
    return this.fromAuths(key);
  }

  private fromAuths(key: string): RegistryCredentials | undefined {
    const auths = this.load().auths ?? {};
    let entryKey: string | undefined = Object.hasOwn(auths, key) ? key : undefined;
    entryKey ??= Object.keys(auths).find((k) => keyHostname(k) === key);
    if (entryKey === undefined) return undefined;
    const entry = auths[entryKey];
    if (typeof entry !== 'object' || entry === null)
      throw new CredentialsError('DOCKER_CONFIG', `docker config ${this.file}: auths entry ${JSON.stringify(entryKey)} is not an object`);
    const out: RegistryCredentials = {};
    const auth = str(entry.auth);
    if (auth) {
      const decoded = /^[A-Za-z0-9+/]*={0,2}$/.test(auth) ? Buffer.from(auth, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      if (colon <= 0)
        throw new CredentialsError('DOCKER_CONFIG', `docker config ${this.file}: "auth" of ${JSON.stringify(entryKey)} is not base64 of user:password`);
      out.username = decoded.slice(0, colon);
      out.password = decoded.slice(colon + 1).replace(/^\0+|\0+$/g, '');
    } else {
      if (str(entry.username)) out.username = str(entry.username)!;
      if (str(entry.password)) out.password = str(entry.password)!;
    }
    if (str(entry.identitytoken)) out.identityToken = str(entry.identitytoken)!;
    if (str(entry.registrytoken)) out.registryToken = str(entry.registrytoken)!;
    return Object.keys(out).length > 0 ? out : undefined;
  }

  private fromHelper(helper: string, key: string): Promise<RegistryCredentials | undefined> {
    const program = HELPER_PREFIX + helper;
    const where = `credential helper ${program} (for ${key}, configured in ${this.file})`;
    return new Promise((resolve, reject) => {
      const child = execFile(program, ['get'], { env: this.env, timeout: HELPER_TIMEOUT_MS, maxBuffer: 1024 * 1024 }, (err, stdout) => {
        if (err) {
          const e = err as NodeJS.ErrnoException & { killed?: boolean };
          if (e.code === 'ENOENT') return reject(new CredentialsError('CREDENTIALS', `${where} not found on PATH`, { cause: err }));
          if (/credentials not found/i.test(stdout)) return resolve(undefined);
          if (e.killed) return reject(new CredentialsError('CREDENTIALS', `${where} gave no answer within ${HELPER_TIMEOUT_MS} ms`));
          // The helper's own words, first line only: they name the problem, not the secret.
          const said = stdout.trim().split('\n')[0]?.slice(0, 200);
          return reject(new CredentialsError('CREDENTIALS', `${where} failed (exit ${String(e.code)})${said ? `: ${said}` : ''}`, { cause: err }));
        }
        let answer: unknown;
        try {
          answer = JSON.parse(stdout);
        } catch {
          return reject(new CredentialsError('CREDENTIALS', `${where} did not answer JSON`));
        }
        const a = (typeof answer === 'object' && answer !== null ? answer : {}) as Record<string, unknown>;
        const username = str(a['Username']);
        const secret = str(a['Secret']);
        if (!secret) return resolve(undefined);
        resolve(username === TOKEN_USERNAME ? { identityToken: secret } : { ...(username ? { username } : {}), password: secret });
      });
      child.stdin?.on('error', () => {
        // A helper that exits without reading stdin: its exit status tells what happened.
      });
      child.stdin?.end(key);
    });
  }
}

/** Fixed credentials per registry host (tests, or a caller that has its own). */
export function staticCredentials(byRegistry: Record<string, RegistryCredentials>): CredentialSource {
  return { get: (registry) => Promise.resolve(byRegistry[registry]) };
}
