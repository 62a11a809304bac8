/**
 * The wire side of a Notary v1 trust server, as notary's Go client speaks it
 * (`storage/httpstore.go`): GET of `root.json`, `{version}.root.json`, `timestamp.json` and
 * `<role>.<sha256>.json` (consistent names, so a file is the one its parent lists even while the
 * repository changes), the server-held key endpoints, and the multipart POST that publishes an
 * update atomically. Works against Signet and notary-server alike. Size limits are notary's.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { headerValue, HttpClient, TransportError, type HttpResponse } from '../net/http-client.js';
import { ClientError } from './errors.js';

export const MAX_TIMESTAMP_BYTES = 1024 * 1024;
export const MAX_ROOT_BYTES = 100 * 1024 * 1024;
const MAX_KEY_BYTES = 256 * 1024;
const MAX_ERROR_BYTES = 64 * 1024;

/** Turns an authentication challenge into an Authorization header value, or null (no credentials). */
export type Authenticator = (challenge: string, request: { url: URL; scope: 'pull' | 'push' }) => Promise<string | null>;

export interface TrustServerOptions {
  /** Base URL, e.g. https://notary.example.com:4443 */
  url: string;
  http?: HttpClient;
  authenticate?: Authenticator;
}

export const publicKeySchema = z.object({
  keytype: z.string().min(1),
  keyval: z.object({ public: z.string().min(1), private: z.null().optional() }),
});
export type ServerPublicKey = z.infer<typeof publicKeySchema>;

const MAX_SIGNER_ANSWER_BYTES = 1024 * 1024;

export const serverSignerSchema = z.looseObject({
  gun: z.string(),
  name: z.string(),
  state: z.string(),
  keyId: z.string().nullable(),
  keytype: z.string().nullable(),
  certificate: z.string().nullable(),
});
export type ServerSigner = z.infer<typeof serverSignerSchema>;

export const remoteSignAnswerSchema = z.looseObject({
  gun: z.string(),
  signer: z.string(),
  tag: z.string(),
  digest: z.string(),
  size: z.number(),
  roles: z.array(z.looseObject({ role: z.string(), keyIds: z.array(z.string()) })),
  published: z.array(z.looseObject({ role: z.string(), version: z.number() })),
});
export type RemoteSignAnswer = z.infer<typeof remoteSignAnswerSchema>;

const notaryErrorSchema = z.object({
  errors: z.array(z.object({ code: z.string().optional(), message: z.string().optional(), detail: z.unknown().optional() })).min(1),
});

function encodeGun(gun: string): string {
  return gun
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/%3A/gi, ':'))
    .join('/');
}

/** A one-line reason from a notary-style error body, or the status. */
export function describeServerError(res: HttpResponse): string {
  try {
    const parsed = notaryErrorSchema.safeParse(JSON.parse(res.body.subarray(0, MAX_ERROR_BYTES).toString('utf8')));
    if (parsed.success) {
      return parsed.data.errors
        .map((e) => {
          const detail = e.detail && typeof e.detail === 'object' ? JSON.stringify(e.detail) : e.detail ? String(e.detail) : '';
          return [e.code, e.message, detail && detail !== '{}' ? detail : ''].filter(Boolean).join(': ');
        })
        .join('; ');
    }
  } catch {
    // not JSON: fall through to the status line
  }
  return `HTTP ${res.status}`;
}

export class TrustServer {
  readonly base: URL;
  private readonly http: HttpClient;
  private readonly ownsHttp: boolean;
  private readonly authorization = new Map<'pull' | 'push', string>();

  constructor(
    readonly gun: string,
    private readonly options: TrustServerOptions,
  ) {
    try {
      this.base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    } catch {
      throw new ClientError('BAD_INPUT', `not a trust server URL: ${options.url}`);
    }
    if (this.base.protocol !== 'https:' && this.base.protocol !== 'http:') {
      throw new ClientError('BAD_INPUT', `trust server URL must be http:// or https://: ${options.url}`);
    }
    this.ownsHttp = !options.http;
    this.http = options.http ?? new HttpClient();
  }

  close(): void {
    if (this.ownsHttp) this.http.close();
  }

  private url(file: string): URL {
    return new URL(`v2/${encodeGun(this.gun)}/_trust/tuf/${file}`, this.base);
  }

  private async send(
    method: 'GET' | 'POST' | 'DELETE',
    url: URL,
    scope: 'pull' | 'push',
    extra: { body?: Buffer; headers?: Record<string, string>; maxBytes: number; passForbidden?: boolean },
  ): Promise<HttpResponse> {
    const attempt = async () => {
      const auth = this.authorization.get(scope);
      try {
        return await this.http.request({
          method,
          url,
          body: extra.body,
          maxBytes: extra.maxBytes,
          headers: { ...(auth ? { authorization: auth } : {}), ...extra.headers },
        });
      } catch (err) {
        if (err instanceof TransportError) {
          const what = err.code === 'TOO_LARGE' ? 'SERVER' : 'SERVER';
          throw new ClientError(what, `trust server ${this.base.origin}: ${err.message}`, { cause: err });
        }
        throw err;
      }
    };
    let res = await attempt();
    // A caller's own credential (an OIDC ID token) is the whole answer: no token exchange.
    if (extra.headers?.['authorization']) return res;
    if (res.status === 401) {
      const challenge = headerValue(res.headers, 'www-authenticate');
      const header = challenge && this.options.authenticate ? await this.options.authenticate(challenge, { url, scope }) : null;
      if (!header) throw new ClientError('UNAUTHORIZED', `trust server ${this.base.origin} requires credentials for ${this.gun} (${scope})`);
      this.authorization.set(scope, header);
      if (scope === 'push') this.authorization.set('pull', header);
      res = await attempt();
      if (res.status === 401) throw new ClientError('UNAUTHORIZED', `trust server ${this.base.origin} refused the credentials for ${this.gun} (${scope})`);
    }
    if (res.status === 403 && !extra.passForbidden)
      throw new ClientError('UNAUTHORIZED', `trust server ${this.base.origin} denies ${scope} access to ${this.gun}`);
    return res;
  }

  private async getFile(file: string, maxBytes: number, scope: 'pull' | 'push' = 'pull'): Promise<Buffer | null> {
    const res = await this.send('GET', this.url(file), scope, { maxBytes });
    if (res.status === 404) return null;
    if (res.status !== 200) throw new ClientError('SERVER', `trust server ${this.base.origin}: GET ${file} for ${this.gun}: ${describeServerError(res)}`);
    return res.body;
  }

  /** The newest root, or null when the repository has no trust data. */
  getRoot(scope: 'pull' | 'push' = 'pull'): Promise<Buffer | null> {
    return this.getFile('root.json', MAX_ROOT_BYTES, scope);
  }

  /** Root version `version`, or null when there is none (the end of a rotation chain). */
  getRootVersion(version: number): Promise<Buffer | null> {
    return this.getFile(`${version}.root.json`, MAX_ROOT_BYTES);
  }

  getTimestamp(): Promise<Buffer | null> {
    return this.getFile('timestamp.json', MAX_TIMESTAMP_BYTES);
  }

  /** A role file by the sha256 (hex) and length its parent lists. */
  async getListedFile(role: string, sha256Hex: string, length: number): Promise<Buffer> {
    const bytes = await this.getFile(`${role}.${sha256Hex}.json`, length);
    if (!bytes) throw new ClientError('SERVER', `trust server ${this.base.origin} has no ${role} with the sha256 the repository lists (${this.gun})`);
    return bytes;
  }

  /** The public key the server holds (or creates) for `role`: GET, or POST to rotate it. */
  async serverKey(role: 'timestamp' | 'snapshot', rotate = false): Promise<ServerPublicKey> {
    const res = await this.send(rotate ? 'POST' : 'GET', this.url(`${role}.key`), 'push', {
      maxBytes: MAX_KEY_BYTES,
      ...(rotate ? { body: Buffer.alloc(0) } : {}),
    });
    if (res.status !== 200) throw new ClientError('SERVER', `trust server ${this.base.origin}: ${role} key for ${this.gun}: ${describeServerError(res)}`);
    let body: unknown;
    try {
      body = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new ClientError('SERVER', `trust server ${this.base.origin}: the ${role} key is not JSON`);
    }
    const parsed = publicKeySchema.safeParse(body);
    if (!parsed.success) throw new ClientError('SERVER', `trust server ${this.base.origin}: the ${role} key is not a public key`);
    return parsed.data;
  }

  /** Publish role files in one atomic update (multipart, one part per role, filename = role). */
  async publish(files: ReadonlyMap<string, Buffer>): Promise<void> {
    const boundary = `signet${randomBytes(12).toString('hex')}`;
    const parts: Buffer[] = [];
    for (const [role, bytes] of files) {
      parts.push(
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${role}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
        bytes,
        Buffer.from('\r\n'),
      );
    }
    parts.push(Buffer.from(`--${boundary}--\r\n`));
    const res = await this.send('POST', this.url(''), 'push', {
      body: Buffer.concat(parts),
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      maxBytes: MAX_ERROR_BYTES,
    });
    if (res.status !== 200) {
      throw new ClientError('UPDATE_REFUSED', `trust server ${this.base.origin} refused the update of ${this.gun}: ${describeServerError(res)}`);
    }
  }
  // ---- staged updates (key ceremonies): Signet's /api/v1/repositories/{gun}/staged… ----

  private stagedUrl(suffix = ''): URL {
    return new URL(`api/v1/repositories/${encodeGun(this.gun)}/staged${suffix}`, this.base);
  }

  private async stagedCall(method: 'GET' | 'POST' | 'DELETE', url: URL, scope: 'pull' | 'push', body?: unknown): Promise<unknown> {
    const res = await this.send(method, url, scope, {
      maxBytes: MAX_ROOT_BYTES,
      ...(body !== undefined ? { body: Buffer.from(JSON.stringify(body)), headers: { 'content-type': 'application/json' } } : {}),
    });
    if (res.status === 404 && !/^application\/json/.test(headerValue(res.headers, 'content-type') ?? '')) {
      throw new ClientError('SERVER', `trust server ${this.base.origin} does not offer staged updates`);
    }
    if (res.status < 200 || res.status >= 300) {
      throw new ClientError('UPDATE_REFUSED', `trust server ${this.base.origin} refused: ${describeServerError(res)}`);
    }
    try {
      return JSON.parse(res.body.toString('utf8')) as unknown;
    } catch {
      throw new ClientError('SERVER', `trust server ${this.base.origin}: the answer about staged updates of ${this.gun} is not JSON`);
    }
  }

  /** Stage a role file that does not meet its thresholds yet. */
  stage(role: string, file: { signed: object; signatures: object[] }, expiresInSeconds?: number): Promise<unknown> {
    return this.stagedCall('POST', this.stagedUrl(), 'push', { role, file, ...(expiresInSeconds ? { expiresIn: expiresInSeconds } : {}) });
  }

  /** Pending staged updates of this repository (or in `state`). */
  listStaged(state?: string): Promise<unknown> {
    const url = this.stagedUrl();
    if (state) url.searchParams.set('state', state);
    return this.stagedCall('GET', url, 'pull');
  }

  /** Pending staged updates of every repository (needs catalog access when auth is on). */
  listAllStaged(state?: string): Promise<unknown> {
    const url = new URL('api/v1/staged', this.base);
    if (state) url.searchParams.set('state', state);
    return this.stagedCall('GET', url, 'pull');
  }

  getStaged(id: string): Promise<unknown> {
    return this.stagedCall('GET', this.stagedUrl(`/${encodeURIComponent(id)}`), 'pull');
  }

  addStagedSignatures(id: string, signatures: object[]): Promise<unknown> {
    return this.stagedCall('POST', this.stagedUrl(`/${encodeURIComponent(id)}/signatures`), 'push', { signatures });
  }

  cancelStaged(id: string): Promise<unknown> {
    return this.stagedCall('DELETE', this.stagedUrl(`/${encodeURIComponent(id)}`), 'push');
  }

  // ---- server-held signers: Signet's /api/v1/repositories/{gun}/signers… ----

  private async signerCall<T>(
    method: 'GET' | 'POST',
    name: string,
    suffix: string,
    scope: 'pull' | 'push',
    schema: z.ZodType<T>,
    body?: unknown,
    bearer?: string,
  ): Promise<T> {
    const url = new URL(`api/v1/repositories/${encodeGun(this.gun)}/signers/${encodeURIComponent(name)}${suffix}`, this.base);
    const headers: Record<string, string> = {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    };
    const res = await this.send(method, url, scope, {
      maxBytes: MAX_SIGNER_ANSWER_BYTES,
      passForbidden: true,
      headers,
      ...(body !== undefined ? { body: Buffer.from(JSON.stringify(body)) } : {}),
    });
    const json = /^application\/json/.test(headerValue(res.headers, 'content-type') ?? '');
    if (res.status === 404 && !json) throw new ClientError('SERVER', `trust server ${this.base.origin} does not offer server-held signers`);
    if (res.status < 200 || res.status >= 300) {
      throw new ClientError(
        res.status === 403 || res.status === 401 ? 'UNAUTHORIZED' : 'UPDATE_REFUSED',
        `trust server ${this.base.origin} refused (signer ${name} of ${this.gun}): ${describeServerError(res)}`,
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new ClientError('SERVER', `trust server ${this.base.origin}: the answer about signer ${name} of ${this.gun} is not JSON`);
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success)
      throw new ClientError('SERVER', `trust server ${this.base.origin}: the answer about signer ${name} of ${this.gun} is not what was expected`);
    return parsed.data;
  }

  /** Server-held signer `name`: its active key and delegation certificate. */
  serverSigner(name: string): Promise<ServerSigner> {
    return this.signerCall('GET', name, '', 'pull', serverSignerSchema);
  }

  /**
   * Ask server-held signer `name` to sign `tag` (the server builds, signs and publishes its
   * roles). With `idToken` (an OIDC ID token from the CI system) that token is the credential.
   */
  remoteSign(name: string, request: { tag: string; digest: string; size: number; scan?: unknown }, idToken?: string): Promise<RemoteSignAnswer> {
    return this.signerCall('POST', name, '/sign', 'push', remoteSignAnswerSchema, request, idToken);
  }
}
