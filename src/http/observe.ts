/**
 * Per-request observation around every handler (fast path and express alike): a request ID
 * (the caller's X-Request-Id when well-formed, else a new one), Prometheus counters and latency,
 * and one structured log line with the route, repository and authenticated subject. Which lines
 * reach info level is configurable (`RequestLogMode`); by default reads log at debug level: they
 * are the bulk of the traffic, and a scan of missing paths must not flood the log.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Caller } from './pipeline.js';

export interface RequestInfo {
  id: string;
  route: string;
  /**
   * The peer's address, read when the request arrives: by the time a response finishes, the
   * socket may be gone (a 413 with `Connection: close`, a client that hung up), and
   * `req.socket` is then null.
   */
  remote?: string | undefined;
  gun?: string;
  subject?: string;
  /** Who passed authentication, as the routes taking a pipeline's identity need it. */
  caller?: Caller;
}

const INFO = Symbol('signet.request');
type Observed = IncomingMessage & { [INFO]?: RequestInfo };
type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** What the handlers learned about a request (route, repository, subject), for the log line. */
export function requestInfo(req: IncomingMessage): RequestInfo {
  const r = req as Observed;
  return (r[INFO] ??= { id: randomUUID(), route: 'unmatched' });
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Which requests get a log line at info level. Errors (5xx) are always logged at error level,
 * except with `off`; everything not logged at info is logged at debug.
 * - `all`: every request.
 * - `writes` (default): writes (anything but GET and HEAD), whatever their answer; a sampled
 *   fraction of reads. A 404 from a scanner or a client probing is a read: it stays at debug.
 * - `errors`: 5xx only.
 * - `off`: none, errors included (metrics still count them).
 */
export type RequestLogMode = 'all' | 'writes' | 'errors' | 'off';

export interface ObserveOptions {
  requests: RequestLogMode;
  /** Fraction (0 to 1) of reads logged at info in `writes` mode. */
  readSample: number;
}

type Level = 'error' | 'info' | 'debug' | null;

function levelOf(method: string | undefined, status: number, options: ObserveOptions): Level {
  if (options.requests === 'off') return null;
  if (status >= 500) return 'error';
  if (options.requests === 'all') return 'info';
  if (options.requests === 'errors') return 'debug';
  const read = method === 'GET' || method === 'HEAD';
  if (!read) return 'info';
  return options.readSample > 0 && Math.random() < options.readSample ? 'info' : 'debug';
}

export function observe(metrics: Metrics, logger: Logger, handler: Handler, options: ObserveOptions = { requests: 'writes', readSample: 0 }): Handler {
  return (req, res) => {
    const started = performance.now();
    const incoming = req.headers['x-request-id'];
    const info: RequestInfo = {
      id: typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID(),
      route: 'unmatched',
      remote: req.socket?.remoteAddress,
    };
    (req as Observed)[INFO] = info;
    res.setHeader('X-Request-Id', info.id);
    // Listeners on 'finish' run outside any request's try/catch: a throw there would end the
    // process, so nothing in this one may throw.
    res.once('finish', () => {
      try {
        const ms = performance.now() - started;
        metrics.requests.inc({ route: info.route, method: req.method ?? '', status: res.statusCode });
        metrics.latency.observe({ route: info.route }, ms / 1000);
        const level = levelOf(req.method, res.statusCode, options);
        if (level && logger.isLevelEnabled(level)) {
          logger[level]('request', {
            requestId: info.id,
            method: req.method,
            path: req.url,
            route: info.route,
            status: res.statusCode,
            ms: Math.round(ms * 100) / 100,
            gun: info.gun,
            subject: info.subject ?? 'anonymous',
            remote: info.remote,
          });
        }
      } catch (e) {
        try {
          logger.error('request observation failed', { requestId: info.id, error: (e as Error).message });
        } catch {
          // Nothing left to tell.
        }
      }
    });
    handler(req, res);
  };
}
