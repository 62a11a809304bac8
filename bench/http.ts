/** A small HTTP(S) client for setting servers up (not for load): trusts the bench CA. */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class HttpClient {
  private readonly agent: http.Agent;

  constructor(
    readonly baseUrl: string,
    ca?: Buffer,
  ) {
    this.agent = baseUrl.startsWith('https:')
      ? new https.Agent({ keepAlive: true, maxSockets: 8, ...(ca ? { ca } : {}) })
      : new http.Agent({ keepAlive: true, maxSockets: 8 });
  }

  request(method: string, path: string, opts: { body?: Buffer; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<HttpResponse> {
    const url = new URL(path, this.baseUrl);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          agent: this.agent,
          headers: { ...(opts.body ? { 'Content-Length': String(opts.body.length) } : {}), ...opts.headers },
          timeout: opts.timeoutMs ?? 600_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.href}: timed out`)));
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  async get(path: string): Promise<Buffer> {
    const res = await this.request('GET', path);
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.body.toString().slice(0, 300)}`);
    return res.body;
  }

  close(): void {
    this.agent.destroy();
  }
}

/** What TLS a server negotiates with a default Node client: protocol, cipher, key exchange. */
export async function tlsSummary(url: string, ca: Buffer): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = tls.connect({ host: u.hostname, port: Number(u.port), ca, servername: undefined }, () => {
      const cipher = socket.getCipher();
      const eph = socket.getEphemeralKeyInfo() as { type?: string; name?: string; size?: number } | null;
      const cert = socket.getPeerCertificate();
      const keyInfo = cert && 'bits' in cert ? `RSA-${(cert as { bits?: number }).bits}` : 'cert';
      resolve(`${socket.getProtocol()} ${cipher.name}${eph?.name ? ` ${eph.name}` : ''} ${keyInfo}`);
      socket.end();
    });
    socket.on('error', (e) => resolve(`error: ${e.message}`));
  });
}
