/**
 * `signet gate`: the deploy-time gate as its own process (it runs in the cluster; the trust
 * server need not). Loads the policy (refusing to start on a bad one), serves the admission
 * webhooks and the verify API, and reloads the policy on SIGHUP and when the file changes,
 * keeping the last good policy when a reload fails.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createLogger, type LogLevel } from '../log.js';
import { startGateServer } from '../gate/gate-server.js';
import { loadPolicy } from '../gate/policy.js';
import { parseCommand, UsageError, type CommandSpec } from './args.js';

const SPEC: CommandSpec = {
  name: 'gate',
  usage: `usage: signet gate --policy FILE --tls-cert FILE --tls-key FILE [--host H] [--port N] [--log-level L]
       signet gate --policy FILE --plain-http [--host H] [--port N]

The deploy gate: a Kubernetes admission webhook (POST /mutate, POST /validate, AdmissionReview
admission.k8s.io/v1) and a verification API (POST /v1/verify {"image": "…"}), checking images
against the signer policy in FILE (YAML or JSON; see docs/gate.md). GET /healthz, /readyz and
/metrics. The policy is reloaded on SIGHUP and when the file changes; a bad reload keeps the last
good policy. Prints \`signet gate listening on URL\` when ready.

  --policy FILE      the policy (required)
  --tls-cert FILE    serving certificate (PEM), with --tls-key: the API server calls webhooks over TLS only
  --tls-key FILE     its private key (PEM)
  --plain-http       serve plain http instead (local trials only)
  --host H           address to listen on (default 0.0.0.0)
  --port N           port (default 8443; 0 picks a free one)
  --log-level L      debug, info (default: one line per decision), warn, error

Exit status: 2 when the policy or an option is wrong (the message names the field and line).`,
  options: {
    policy: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'plain-http': { type: 'boolean' },
    host: { type: 'string' },
    port: { type: 'string' },
    'log-level': { type: 'string' },
  },
};

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'gate');
  }
}

export async function runGateCommand(argv: string[]): Promise<number> {
  const a = parseCommand(SPEC, argv.slice(1));
  if (!a) return 0;
  const file = a.string('policy');
  if (!file) throw new UsageError('--policy FILE is needed', 'gate');
  const cert = a.string('tls-cert');
  const key = a.string('tls-key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together', 'gate');
  if (!cert && !a.flag('plain-http')) throw new UsageError('--tls-cert and --tls-key are needed (or --plain-http for a local trial)', 'gate');
  if (cert && a.flag('plain-http')) throw new UsageError('--plain-http excludes --tls-cert', 'gate');
  const portText = a.string('port') ?? '8443';
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new UsageError(`--port must be a port number, got ${JSON.stringify(portText)}`, 'gate');
  const level = (a.string('log-level') ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError(`--log-level must be debug, info, warn or error`, 'gate');
  const policy = loadPolicy(file); // a bad policy: GateError POLICY, exit 2
  // Decision lines carry image names, digests and signer names only: no redaction walk needed.
  const logger = createLogger(level, undefined, { redact: false, service: 'signet-gate' });
  const gate = await startGateServer(policy, {
    host: a.string('host') ?? '0.0.0.0',
    port: Number(portText),
    ...(cert && key ? { tls: { cert: readPem(cert, 'certificate'), key: readPem(key, 'key') } } : {}),
    logger,
  });
  const reload = (why: string) => {
    try {
      gate.setPolicy(loadPolicy(file));
      logger.info('policy reloaded', { file, why });
    } catch (err) {
      logger.error('policy reload failed; the last good policy stays in force', { file, why, error: (err as Error).message });
    }
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  watchFile(file, { interval: 1000 }, (now, before) => {
    if (now.mtimeMs !== before.mtimeMs || now.size !== before.size) reload('file changed');
  });
  console.log(`signet gate listening on ${gate.url}`);
  const stop = () => {
    unwatchFile(file);
    void gate.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return -1;
}
