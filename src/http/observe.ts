/**
 * Per-request observation around every handler (fast path and express alike): a request ID
 * (the caller's X-Request-Id when well-formed, else a new one), Prometheus counters and latency,
 * and one structured log line with the route, repository and authenticated subject. Successful
 * reads log at debug level: they are the bulk of the traffic.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { Metrics } from '../observability/metrics.js';

export interface RequestInfo {
  id: string;
  route: string;
  gun?: string;
  subject?: string;
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

export function observe(metrics: Metrics, logger: Logger, handler: Handler): Handler {
  return (req, res) => {
    const started = performance.now();
    const incoming = req.headers['x-request-id'];
    const info: RequestInfo = { id: typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID(), route: 'unmatched' };
    (req as Observed)[INFO] = info;
    res.setHeader('X-Request-Id', info.id);
    res.once('finish', () => {
      const ms = performance.now() - started;
      metrics.requests.inc({ route: info.route, method: req.method ?? '', status: res.statusCode });
      metrics.latency.observe({ route: info.route }, ms / 1000);
      const level = res.statusCode >= 500 ? 'error' : req.method !== 'GET' || res.statusCode >= 400 ? 'info' : 'debug';
      if (logger.isLevelEnabled(level)) {
        logger[level]('request', {
          requestId: info.id,
          method: req.method,
          path: req.url,
          route: info.route,
          status: res.statusCode,
          ms: Math.round(ms * 100) / 100,
          gun: info.gun,
          subject: info.subject ?? 'anonymous',
          remote: req.socket.remoteAddress,
        });
      }
    });
    handler(req, res);
  };
}
