/**
 * Prometheus metrics of one Signet process (served at /metrics): requests by route and status,
 * latency, updates accepted and refused by reason, signing operations, the database pool,
 * cache effectiveness and metadata nearing expiry. Each server owns its own registry.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'signet_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'signet_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly updates = new Counter({
    name: 'signet_updates_total',
    help: 'Update requests by result (accepted/refused) and reason',
    labelNames: ['result', 'reason'] as const,
    registers: [this.registry],
  });
  readonly signatures = new Counter({
    name: 'signet_signing_operations_total',
    help: 'Server signatures made, by role',
    labelNames: ['role'] as const,
    registers: [this.registry],
  });
  readonly signerSigns = new Counter({
    name: 'signet_signer_sign_total',
    help: 'Signing calls of server-held signers by result (signed/refused) and error code',
    labelNames: ['result', 'code'] as const,
    registers: [this.registry],
  });
  readonly cache = new Counter({
    name: 'signet_metadata_cache_requests_total',
    help: 'Metadata reads answered from memory (hit) or the database (miss)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly expiring = new Gauge({
    name: 'signet_roles_expiring',
    help: 'Current client-signed roles expiring within the warning window, by role kind',
    labelNames: ['role'] as const,
    registers: [this.registry],
  });
  readonly expired = new Gauge({
    name: 'signet_roles_expired',
    help: 'Current client-signed roles already expired, by role kind',
    labelNames: ['role'] as const,
    registers: [this.registry],
  });

  constructor(poolStats?: () => { total: number; idle: number; waiting: number }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'signet_' });
    if (poolStats) {
      new Gauge({
        name: 'signet_db_pool_size',
        help: 'Database pool connections (total, idle, waiting clients)',
        labelNames: ['state'] as const,
        registers: [this.registry],
        collect() {
          const s = poolStats();
          this.set({ state: 'total' }, s.total);
          this.set({ state: 'idle' }, s.idle);
          this.set({ state: 'waiting' }, s.waiting);
        },
      });
    }
  }
}
