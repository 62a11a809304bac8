/**
 * `npm run bench:signers`: signed tags per second with a server-held signer (the signing call,
 * `POST …/signers/{name}/sign`, over HTTP: Signet builds, signs and publishes targets/bench and
 * targets/releases) against the reference `notary` CLI signing the same kind of tag with a
 * local delegation key (`notary addhash` then `notary publish`, two processes, and `addhash -p`,
 * one), both against one Signet server, into repositories of the same shape.
 *
 * Writes bench/results/<timestamp>-signers.json and the "Server-held signers" section of
 * docs/benchmarks.md, and prints a summary.
 *
 * Environment (all optional):
 *   BENCH_SIGNERS_CALLS=200       signing calls per API measurement
 *   BENCH_SIGNERS_NOTARY=15       tags signed per notary measurement
 *   BENCH_DATABASE_URL            a Postgres database for Signet (default: embedded PGlite)
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { tufKeyId } from '../src/tuf/core/keys.js';
import { createRepository, postUpdate } from '../test/support/client.js';
import { projectRoot } from '../test/support/paths.js';
import { signFile, targetsDoc, type TestKey } from '../test/support/tuf-kit.js';
import { run, runBench } from './proc.js';
import { startSignet, tempDir } from './servers.js';

const envInt = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number from 1`);
  return v;
};

const CALLS = envInt('BENCH_SIGNERS_CALLS', 200);
const NOTARY_TAGS = envInt('BENCH_SIGNERS_NOTARY', 15);
const SIGNER = 'bench';
const digestOf = (tag: string) => createHash('sha256').update(`image ${tag}`).digest('hex');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
};

interface Row {
  id: string;
  label: string;
  tags: number;
  seconds: number;
  tagsPerSecond: number;
  medianMs: number | null;
}

async function main(): Promise<number> {
  const work = tempDir('signet-bench-signers-');
  const dataDir = path.join(work, 'data');
  const server = await startSignet({
    id: 'signet',
    label: 'Signet',
    dataDir,
    ...(process.env['BENCH_DATABASE_URL'] ? { databaseUrl: process.env['BENCH_DATABASE_URL'] } : {}),
    env: { SIGNET_SIGN_RATE_LIMIT: '0' },
  });
  const url = server.url;
  const rows: Row[] = [];

  // Signet: a repository with a server-held snapshot key, delegating targets/bench and
  // targets/releases to the server-held signer.
  const gun = 'localhost:5000/bench/server-held';
  const repo = await createRepository(url, gun, { serverSnapshot: true });
  const created = await request(url)
    .post(`/api/v1/repositories/${gun}/signers`)
    .set('Content-Type', 'application/json')
    .send(JSON.stringify({ name: SIGNER }));
  if (created.status !== 201) throw new Error(`create signer: ${created.status} ${created.text}`);
  const pub = (created.body as { publicKey: string }).publicKey;
  const key: TestKey = { keytype: 'ecdsa-x509', publicB64: pub, keyId: tufKeyId('ecdsa-x509', pub), privateKey: null };
  const targets = signFile(
    targetsDoc({
      version: 2,
      delegations: [
        { name: `targets/${SIGNER}`, keys: [key] },
        { name: 'targets/releases', keys: [key] },
      ],
    }),
    [repo.targetsKey],
  );
  if ((await postUpdate(url, gun, { targets })).status !== 200) throw new Error('delegating to the signer failed');
  const sign = async (tag: string) => {
    const t0 = performance.now();
    const r = await request(url)
      .post(`/api/v1/repositories/${gun}/signers/${SIGNER}/sign`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ tag, digest: `sha256:${digestOf(tag)}`, size: 1000 }));
    if (r.status !== 200) throw new Error(`sign ${tag}: ${r.status} ${r.text}`);
    return performance.now() - t0;
  };
  for (let i = 0; i < 5; i++) await sign(`warm-${i}`);

  const measureApi = async (id: string, label: string, inFlight: number) => {
    const latencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < CALLS) {
          const i = next++;
          latencies.push(await sign(`${id}-${i}`));
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    rows.push({ id, label, tags: CALLS, seconds, tagsPerSecond: CALLS / seconds, medianMs: median(latencies) });
  };
  await measureApi('api-sequential', 'signing call, one at a time', 1);
  await measureApi('api-concurrent', 'signing call, 16 at a time', 16);

  // notary: the same shape, the delegation key local.
  const ngun = 'localhost:5000/bench/notary-local';
  const trust = path.join(work, 'notary-trust');
  const env = {
    PATH: process.env['PATH'] ?? '',
    HOME: work,
    NOTARY_ROOT_PASSPHRASE: 'bench-pass',
    NOTARY_TARGETS_PASSPHRASE: 'bench-pass',
    NOTARY_SNAPSHOT_PASSPHRASE: 'bench-pass',
    NOTARY_DELEGATION_PASSPHRASE: 'bench-pass',
  };
  const notary = (...args: string[]) => run('notary', ['-s', url, '-d', trust, ...args], { env });
  notary('init', ngun, '-p');
  notary('key', 'rotate', ngun, 'snapshot', '-r');
  const keyFile = path.join(work, `${SIGNER}.key`);
  const cert = path.join(work, `${SIGNER}.crt`);
  run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
  run('openssl', ['req', '-new', '-x509', '-key', keyFile, '-out', cert, '-days', '30', '-subj', `/CN=${SIGNER}`]);
  notary('delegation', 'add', ngun, 'targets/releases', cert, '--all-paths');
  notary('delegation', 'add', ngun, `targets/${SIGNER}`, cert, '--all-paths', '-p');
  notary('key', 'import', keyFile, '--role', `targets/${SIGNER}`);
  const roles = ['-r', 'targets/releases', '-r', `targets/${SIGNER}`];
  notary('addhash', ngun, 'warm', '1000', '--sha256', digestOf('warm'), ...roles, '-p');

  const measureNotary = (id: string, label: string, once: (tag: string) => void) => {
    const latencies: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < NOTARY_TAGS; i++) {
      const s = performance.now();
      once(`${id}-${i}`);
      latencies.push(performance.now() - s);
    }
    const seconds = (performance.now() - t0) / 1000;
    rows.push({ id, label, tags: NOTARY_TAGS, seconds, tagsPerSecond: NOTARY_TAGS / seconds, medianMs: median(latencies) });
  };
  measureNotary('notary-add-publish', 'notary addhash + notary publish (local key, two processes)', (tag) => {
    notary('addhash', ngun, tag, '1000', '--sha256', digestOf(tag), ...roles);
    notary('publish', ngun);
  });
  measureNotary('notary-add-p', 'notary addhash -p (local key, one process)', (tag) => {
    notary('addhash', ngun, tag, '1000', '--sha256', digestOf(tag), ...roles, '-p');
  });

  // Both repositories moved as they should: every tag is in the published delegations.
  const listed = notary('list', ngun, '-r', `targets/${SIGNER}`);
  if (!listed.includes(`notary-add-p-${NOTARY_TAGS - 1}`)) throw new Error('notary did not publish its last tag');
  const current = await request(url).get(`/v2/${gun}/_trust/tuf/targets/releases.json`);
  const signed = (JSON.parse(current.text) as { signed: { targets: Record<string, unknown> } }).signed.targets;
  if (Object.keys(signed).length !== 5 + 2 * CALLS) throw new Error(`expected ${5 + 2 * CALLS} tags in targets/releases, found ${Object.keys(signed).length}`);
  await server.stop();

  const base = rows.find((r) => r.id === 'notary-add-publish')!.tagsPerSecond;
  const when = new Date();
  const record = {
    date: when.toISOString(),
    machine: { nproc: os.cpus().length, cpu: os.cpus()[0]?.model ?? '', load: os.loadavg() },
    node: process.version,
    store: process.env['BENCH_DATABASE_URL'] ? 'postgres' : 'pglite',
    rows,
  };
  const resultsDir = path.join(projectRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = `${when.toISOString().replace(/[:.]/g, '-')}-signers.json`;
  writeFileSync(path.join(resultsDir, file), JSON.stringify(record, null, 2) + '\n');

  const table = [
    '| how a tag is signed and published | tags | seconds | tags per second | median per tag (ms) | × notary add + publish |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.tags} | ${r.seconds.toFixed(2)} | ${r.tagsPerSecond.toFixed(1)} | ${r.medianMs === null ? '–' : r.medianMs.toFixed(1)} | ${(r.tagsPerSecond / base).toFixed(1)}× |`,
    ),
  ].join('\n');
  const section = `<!-- signers-bench:start (generated by \`npm run bench:signers\`; rerun it to refresh this section) -->
## Server-held signers

Signed tags per second into the delegations \`targets/bench\` and \`targets/releases\` (docker trust's
shape), each tag published with a new snapshot and timestamp signed by the server, against one Signet
server (${record.store === 'postgres' ? 'Postgres' : 'embedded PGlite'}, plain http on 127.0.0.1). The signing call is
\`POST …/signers/bench/sign\` from one process keeping 1 or 16 calls in flight (Signet builds, signs with the
key it holds and publishes each tag in one transaction; calls for one repository are applied one after the
other). The notary CLI (Debian 0.7) signs with a local delegation key, one process per step, as a pipeline
holding the key does. Raw record: \`bench/results/${file}\`.

${table}

- Checked: every tag signed through the API is in the current \`targets/releases\` (${5 + 2 * CALLS} tags), and
  notary lists its last tag in \`targets/${SIGNER}\`. The API measurements sign into one repository, so its
  delegation files grow to ${5 + 2 * CALLS} tags over the run, while notary's stay under ${2 * NOTARY_TAGS + 2}: each
  signing call re-signs the whole delegation, which costs more as it grows.
- With 16 calls in flight the median per tag is mostly waiting for the repository's turn: calls for one
  repository are serialised by design (no version lost or repeated).
- Run: ${record.date}, \`nproc\` = ${record.machine.nproc}, ${record.machine.cpu}, load average at the end ${record.machine.load
    .map((l) => l.toFixed(2))
    .join(' ')}, node ${record.node}. Absolute numbers are noisy on this shared machine; compare the ratios.
<!-- signers-bench:end -->`;
  const docPath = path.join(projectRoot, 'docs', 'benchmarks.md');
  const doc = readFileSync(docPath, 'utf8');
  const start = doc.indexOf('<!-- signers-bench:start');
  const end = doc.indexOf('<!-- signers-bench:end -->');
  writeFileSync(
    docPath,
    start >= 0 && end > start ? doc.slice(0, start) + section + doc.slice(end + '<!-- signers-bench:end -->'.length) : `${doc.trimEnd()}\n\n${section}\n`,
  );
  console.log(table);
  return 0;
}

runBench('bench:signers', main);
