/**
 * HTTP/1.x over raw sockets, for tests that must send exact bytes: lying lengths, bad chunk
 * encodings, pipelined requests, hang-ups mid-body. A connection records every byte it receives
 * and parses the responses out of them as they complete; nothing waits without a bound, and every
 * connection opened is destroyed by `closeAll()`.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface RawTarget {
  /** http://host:port or https://host:port */
  url: string;
  /** CA certificate (PEM) that signed the server's certificate, for https. */
  ca?: Buffer;
}

export interface RawResponse {
  version: string;
  status: number;
  reason: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

const open = new Set<RawConnection>();

/** Destroy every connection still open (an `afterEach` for files that use this module). */
export function closeAll(): void {
  for (const c of open) c.destroy();
  open.clear();
}

/**
 * The complete responses at the start of `data`. 1xx answers are included (they are answers on
 * the wire); a body without a length is complete only once the server has closed.
 */
export function parseResponses(data: Buffer, closed: boolean): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) return out;
    const head = data.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(head[0] ?? '');
    if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(head[0])}`);
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const status = Number(m[2]);
    let bodyStart = end + 4;
    let body: Buffer;
    if (status < 200 || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const chunks: Buffer[] = [];
      let p = bodyStart;
      for (;;) {
        const lineEnd = data.indexOf('\r\n', p, 'latin1');
        if (lineEnd < 0) return out;
        const size = parseInt(data.subarray(p, lineEnd).toString('latin1'), 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size in a response');
        if (size === 0) {
          // No trailers from this server: the last chunk is followed by an empty line.
          if (data.length < lineEnd + 4) return out;
          bodyStart = lineEnd + 4;
          break;
        }
        if (data.length < lineEnd + 2 + size + 2) return out;
        chunks.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        p = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(chunks);
      out.push({ version: m[1]!, status, reason: m[3] ?? '', headers, body });
      at = bodyStart;
      continue;
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (data.length < bodyStart + length) return out;
      body = data.subarray(bodyStart, bodyStart + length);
      bodyStart += length;
    } else {
      if (!closed) return out;
      body = data.subarray(bodyStart);
      bodyStart = data.length;
    }
    out.push({ version: m[1]!, status, reason: m[3] ?? '', headers, body });
    at = bodyStart;
  }
}

export class RawConnection {
  private chunks: Buffer[] = [];
  private waiters = new Set<() => void>();
  private readonly started = Date.now();
  /** The server closed (or reset) the connection, or we destroyed it. */
  closed = false;
  /** When the connection closed, in ms since it opened. */
  closedAfterMs: number | null = null;
  /** The last socket error (ECONNRESET, EPIPE…): expected when a server cuts a client off. */
  error: string | null = null;

  private constructor(private readonly socket: net.Socket) {
    open.add(this);
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.wake();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e.code ?? e.message;
    });
    socket.on('close', () => {
      this.closed = true;
      this.closedAfterMs = Date.now() - this.started;
      open.delete(this);
      this.wake();
    });
  }

  /**
   * Connect (and, for https, complete the TLS handshake) within `timeoutMs`. `plain`: a bare TCP
   * connection whatever the scheme, to speak the other protocol to a port.
   */
  static open(target: RawTarget, timeoutMs = 5000, options: { plain?: boolean } = {}): Promise<RawConnection> {
    const u = new URL(target.url);
    const port = Number(u.port);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const secure = u.protocol === 'https:' && !options.plain;
    return new Promise((resolve, reject) => {
      const socket = secure
        ? tls.connect({ host, port, ca: target.ca, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] })
        : net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`could not connect to ${target.url} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        socket.destroy();
        reject(e);
      });
      socket.once(secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RawConnection(socket));
      });
    });
  }

  private wake(): void {
    for (const w of this.waiters) w();
  }

  get data(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** Complete responses so far, 1xx included. */
  get responses(): RawResponse[] {
    return parseResponses(this.data, this.closed);
  }

  /** Final (non-1xx) responses so far. */
  get finals(): RawResponse[] {
    return this.responses.filter((r) => r.status >= 200);
  }

  /** Write bytes; resolves once they are handed to the kernel, or the connection failed. */
  write(bytes: string | Buffer): Promise<void> {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.write(bytes, () => resolve());
    });
  }

  /** Half-close: we send no more, but still read. */
  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  /** Close at once (a reset when data is still unread). */
  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves with true once `ready()` holds, false after `timeoutMs` or once closed without it. */
  waitUntil(ready: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        let ok: boolean;
        try {
          ok = ready();
        } catch {
          ok = false; // a response still arriving can be unparseable for a moment: not yet
        }
        if (ok || this.closed) {
          finish(ok || (this.closed && ready()));
        }
      };
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Wait for `count` final responses (or the close); returns the final responses seen. */
  async finalResponses(count: number, timeoutMs = 5000): Promise<RawResponse[]> {
    await this.waitUntil(() => this.finals.length >= count, timeoutMs);
    return this.finals;
  }

  /** Wait for the server to close the connection; true if it did within `timeoutMs`. */
  waitClosed(timeoutMs = 5000): Promise<boolean> {
    return this.waitUntil(() => this.closed, timeoutMs);
  }
}

/** Send `bytes` on a new connection and collect `count` final responses, then close it. */
export async function exchange(
  target: RawTarget,
  bytes: string | Buffer,
  count = 1,
  timeoutMs = 5000,
): Promise<{ responses: RawResponse[]; closed: boolean; conn: RawConnection }> {
  const conn = await RawConnection.open(target, timeoutMs);
  try {
    await conn.write(bytes);
    const responses = await conn.finalResponses(count, timeoutMs);
    // A server that closes after its answer does so at once; give it a moment to be seen.
    await conn.waitClosed(responses.some((r) => /close/i.test(r.headers['connection'] ?? '')) ? 1000 : 0);
    return { responses, closed: conn.closed, conn };
  } finally {
    conn.destroy();
  }
}
