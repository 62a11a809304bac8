/**
 * The one HTTP(S) client of Signet's client side (trust server, registry, token services):
 * node:http/https with keep-alive agents, an optional custom CA (PEM bundle) added to the
 * system roots, a deadline per request, a bound on every response body, and redirects followed
 * for GET/HEAD (credentials dropped when the host changes, as docker does). Node's global fetch
 * is not used because it cannot take a custom CA without the undici package.
 *
 * Every failure is a TransportError with a stable code and a one-line message naming the URL.
 */
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { CodedError } from '../tuf/core/signet-error.js';

/** BAD_RESPONSE: the peer answered, but not in HTTP. */
export type TransportErrorCode = 'UNREACHABLE' | 'TIMEOUT' | 'TLS' | 'TOO_LARGE' | 'BAD_URL' | 'REDIRECTS' | 'BAD_RESPONSE';

export class TransportError extends CodedError<TransportErrorCode> {
  override name = 'TransportError';
}

/** Codes node gives when a TLS handshake meets a peer that answers in plain text (an http:// server). */
const PLAINTEXT_PEER_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);

/** Whether a failure is an https:// request that reached a server speaking plain HTTP. */
export function isPlaintextPeer(error: unknown): boolean {
  if (!(error instanceof TransportError) || error.code !== 'TLS') return false;
  const cause = error.cause as NodeJS.ErrnoException | undefined;
  return PLAINTEXT_PEER_CODES.has(cause?.code ?? '') || /wrong version number|packet length too long|http request/i.test(cause?.message ?? '');
}

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method?: HttpMethod;
  url: string | URL;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Refuse a response body longer than this (bytes). Default: the client's maxBytes. */
  maxBytes?: number;
  timeoutMs?: number;
  /** Follow redirects (GET and HEAD only). Default true. */
  followRedirects?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The URL that answered, after redirects. */
  url: URL;
}

export interface HttpClientOptions {
  /** PEM bundle trusted in addition to the system roots (a private CA). */
  ca?: string | Buffer;
  /**
   * With `ca`: trust only it (`'only'`, as notary's --tlscacert does: "trust certs signed only by
   * this CA"), or it besides the system roots (`'added'`, the default, as docker does for
   * registries). 'only' also spares the start-up cost of parsing the system roots.
   */
  caMode?: 'only' | 'added';
  timeoutMs?: number;
  maxBytes?: number;
  userAgent?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const MAX_REDIRECTS = 5;

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

function describe(err: NodeJS.ErrnoException & { reason?: string }): { code: TransportErrorCode; text: string } {
  const code = err.code ?? '';
  if (PLAINTEXT_PEER_CODES.has(code) || /wrong version number|packet length too long/i.test(err.message)) {
    return { code: 'TLS', text: 'TLS: the server does not speak TLS (a plain http server?)' };
  }
  // OpenSSL's messages span lines and name its source files: its `reason` is the useful part.
  const oneLine = (typeof err.reason === 'string' && err.reason ? err.reason : err.message).replace(/\s+/g, ' ').trim();
  if (TLS_CODES.has(code) || /certificate|ssl|tls/i.test(err.message)) return { code: 'TLS', text: `TLS: ${oneLine}` };
  if (code.startsWith('HPE_')) return { code: 'BAD_RESPONSE', text: `not an HTTP answer (${oneLine})` };
  if (code === 'ECONNREFUSED') return { code: 'UNREACHABLE', text: 'connection refused' };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { code: 'UNREACHABLE', text: 'host not found' };
  if (code === 'ECONNRESET' || code === 'EPIPE') return { code: 'UNREACHABLE', text: 'connection reset' };
  return { code: 'UNREACHABLE', text: oneLine || code || 'network error' };
}

export class HttpClient {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  private readonly httpsAgent: https.Agent;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly userAgent: string;

  constructor(options: HttpClientOptions = {}) {
    const ca = options.ca ? (options.caMode === 'only' ? [options.ca.toString()] : [...rootCertificates, options.ca.toString()]) : undefined;
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 8, ...(ca ? { ca } : {}) });
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.userAgent = options.userAgent ?? 'signet';
  }

  /** Close idle keep-alive sockets so a short-lived process can exit at once. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      throw new TransportError('BAD_URL', `not a URL: ${String(req.url)}`);
    }
    let headers = { ...req.headers };
    const method = req.method ?? 'GET';
    const follow = req.followRedirects !== false && (method === 'GET' || method === 'HEAD');
    for (let hop = 0; ; hop++) {
      const res = await this.once(method, url, headers, req);
      const location = res.headers.location;
      if (!follow || ![301, 302, 303, 307, 308].includes(res.status) || !location) return res;
      if (hop >= MAX_REDIRECTS) throw new TransportError('REDIRECTS', `${url.origin}: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, url);
      if (next.host !== url.host) {
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      url = next;
    }
  }

  private once(method: HttpMethod, url: URL, headers: Record<string, string>, req: HttpRequest): Promise<HttpResponse> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return Promise.reject(new TransportError('BAD_URL', `unsupported URL scheme ${url.protocol} in ${url.origin}`));
    }
    const limit = req.maxBytes ?? this.maxBytes;
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    const body = req.body === undefined ? undefined : Buffer.from(req.body);
    const where = `${method} ${url.origin}${url.pathname}`;
    return new Promise((resolve, reject) => {
      const mod = url.protocol === 'https:' ? https : http;
      const outgoing = mod.request(url, {
        method,
        agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
        headers: { 'user-agent': this.userAgent, ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      });
      const timer = setTimeout(() => {
        outgoing.destroy(new TransportError('TIMEOUT', `${where}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        if (err instanceof TransportError) return reject(err);
        const { code, text } = describe(err as NodeJS.ErrnoException);
        reject(new TransportError(code, `${where}: ${text}`, { cause: err }));
      };
      outgoing.on('error', fail);
      outgoing.on('response', (res) => {
        const declared = Number(res.headers['content-length']);
        if (method !== 'HEAD' && Number.isFinite(declared) && declared > limit) {
          res.destroy();
          return fail(new TransportError('TOO_LARGE', `${where}: answer of ${declared} bytes, more than the ${limit} allowed`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            res.destroy();
            fail(new TransportError('TOO_LARGE', `${where}: answer longer than the ${limit} bytes allowed`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          if (size > limit) return;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), url });
        });
      });
      outgoing.end(body);
    });
  }
}

/** One header value (the first, when repeated). */
export function headerValue(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
