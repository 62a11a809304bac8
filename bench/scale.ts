/**
 * Scale workloads, Signet on Postgres only, each reported against the same measurement on a
 * fresh repository (or a near-empty changefeed): rows are bulk-inserted with SQL into a
 * dedicated database — copies of a valid repository's real bytes under other GUNs or versions,
 * keeping each repository's current chain valid — and Signet is restarted after each insert so
 * that nothing it may hold in memory hides the bigger tables.
 */
import type pg from 'pg';
import { bigTargetsUpdate, createWriterRepo, publishOne } from './content.js';
import { HttpClient } from './http.js';
import { runPlan, type LoadResult, type LoadSettings, type Plan, type PlannedRequest } from './load.js';
import type { PostgresServer } from './postgres.js';
import { withPool } from './postgres.js';
import { measureWithRetry, type NoiseGuard } from './noise.js';
import { peakRssKb, resetPeakRss, rssKb } from './proc.js';
import { startSignet, tempDir, type Target } from './servers.js';
import type { TestTls } from '../test/support/tls.js';

export interface ScaleRow {
  id: string;
  title: string;
  /** What it is compared with (an id of another row), when it is a ratio. */
  baseline?: string;
  result: LoadResult;
  note?: string;
}

export interface UploadResult {
  targets: number;
  bodyBytes: number;
  status: number;
  postMs: number;
  /** RSS of the Signet process just before the upload, and its peak during it (kB). */
  rssBeforeKb: number | null;
  peakRssKb: number | null;
  /** Time to GET the stored targets.json afterwards, and its size. */
  getMs: number;
  getBytes: number;
}

export interface ScaleResults {
  rows: ScaleRow[];
  upload: UploadResult | null;
  counts: Record<string, number>;
  notes: string[];
}

const VERSIONS = 10_000;
const REPOSITORIES = 10_000;
const CHANGEFEED = 1_000_000;
const BIG_TARGETS = 50_000;

const tuf = (gun: string, file: string) => `/v2/${gun}/_trust/tuf/${file}`;
const get = (path: string): PlannedRequest => ({ method: 'GET', path, kind: 'read' });
const fixed = (path: string): Plan => {
  const req = get(path);
  return () => () => req;
};

export async function runScale(
  postgres: PostgresServer,
  tls: TestTls & { caPem: Buffer },
  settings: LoadSettings,
  say: (line: string) => void,
  guard?: NoiseGuard,
): Promise<ScaleResults> {
  const url = await postgres.createDatabase('signet_bench_scale');
  const dataDir = tempDir('signet-bench-scale.');
  const rows: ScaleRow[] = [];
  const counts: Record<string, number> = {};
  const notes: string[] = [];
  let signet: Target | null = null;
  let client: HttpClient | null = null;
  const restart = async () => {
    client?.close();
    await signet?.stop();
    signet = await startSignet({ id: 'signet-pg-scale', label: 'Signet, Postgres (scale)', databaseUrl: url, dataDir, tls, dbPid: postgres.dbPid });
    client = new HttpClient(signet.url, tls.caPem);
    return signet;
  };
  const measure = async (id: string, title: string, plan: Plan, baseline?: string) => {
    const s = signet!;
    const { result, note } = await measureWithRetry(guard, `scale ${id}`, () => runPlan(s.url, 2, plan, settings, { pid: s.pid, dbPid: s.dbPid ?? null }));
    rows.push({ id, title, ...(baseline ? { baseline } : {}), result, ...(note ? { note } : {}) });
    const base = baseline ? rows.find((r) => r.id === baseline)?.result : undefined;
    const ratio = base ? `  (p50 x${(result.p50 / base.p50).toFixed(2)}, p99 x${(result.p99 / base.p99).toFixed(2)} vs ${baseline})` : '';
    say(
      `scale ${id.padEnd(26)} ${result.rps.toFixed(0).padStart(6)} req/s  p50 ${result.p50.toFixed(2)} ms  p99 ${result.p99.toFixed(2)} ms${result.non2xx + result.errors ? `  non-2xx ${result.non2xx} errors ${result.errors}` : ''}${ratio}${result.machine.otherPct >= 10 ? `  (other load ${result.machine.otherPct.toFixed(0)}%)` : ''}`,
    );
    return result;
  };
  const sql = <T extends pg.QueryResultRow>(text: string, values: unknown[] = []) => withPool(url, (pool) => pool.query<T>(text, values));
  const timed = async (label: string, work: () => Promise<unknown>) => {
    const t0 = performance.now();
    await work();
    say(`scale: ${label} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  };

  try {
    await restart();
    // A fresh repository, and the one that will get 10,000 versions: both just created.
    await createWriterRepo(client!, 'bench/fresh');
    await createWriterRepo(client!, 'bench/deep');
    await measure('fresh-timestamp', 'fresh repository: GET timestamp.json', fixed(tuf('bench/fresh', 'timestamp.json')));
    await measure('fresh-targets', 'fresh repository: GET targets.json', fixed(tuf('bench/fresh', 'targets.json')));
    await measure(
      'feed-small',
      'changefeed of a few records: GET /v2/_trust/changefeed?change_id=0&records=100',
      fixed('/v2/_trust/changefeed?change_id=0&records=100'),
    );

    // 10,000 versions of targets, snapshot and timestamp; the real chain stays current on top.
    await timed(`inserting ${VERSIONS} versions of bench/deep`, async () => {
      await sql(
        `INSERT INTO tuf_files (gun, role, version, sha256, data)
         SELECT f.gun, f.role, v, encode(sha256(convert_to(f.gun || '/' || f.role || '/' || v, 'UTF8')), 'hex'), f.data
         FROM tuf_files f CROSS JOIN generate_series(2, $2::int) v
         WHERE f.gun = $1 AND f.version = 1 AND f.role IN ('targets', 'snapshot', 'timestamp')`,
        ['bench/deep', VERSIONS],
      );
      await sql(
        `INSERT INTO tuf_files (gun, role, version, sha256, data)
         SELECT gun, role, $2::int + 1, sha256, data FROM tuf_files WHERE gun = $1 AND role = 'timestamp' AND version = 1`,
        ['bench/deep', VERSIONS],
      );
      await sql(
        `INSERT INTO changefeed (gun, version, sha256, category)
         SELECT $1, v, encode(sha256(int4send(v)), 'hex'), 'update' FROM generate_series(2, $2::int + 1) v`,
        ['bench/deep', VERSIONS],
      );
      await sql('ANALYZE tuf_files');
      await sql('ANALYZE changefeed');
    });
    counts['versions of bench/deep (timestamp)'] = VERSIONS + 1;
    await restart();
    await measure(
      'deep-timestamp',
      `repository with ${VERSIONS.toLocaleString('en')} versions: GET timestamp.json`,
      fixed(tuf('bench/deep', 'timestamp.json')),
      'fresh-timestamp',
    );
    await measure(
      'deep-targets',
      `repository with ${VERSIONS.toLocaleString('en')} versions: GET targets.json`,
      fixed(tuf('bench/deep', 'targets.json')),
      'fresh-targets',
    );

    // 10,000 repositories: copies of bench/fresh (root, targets, snapshot, timestamp).
    await timed(`inserting ${REPOSITORIES} repositories`, async () => {
      await sql(
        `INSERT INTO tuf_files (gun, role, version, sha256, data)
         SELECT 'bench/many-' || n, f.role, f.version, f.sha256, f.data
         FROM tuf_files f CROSS JOIN generate_series(1, $1::int) n WHERE f.gun = 'bench/fresh'`,
        [REPOSITORIES],
      );
      await sql(
        `INSERT INTO changefeed (gun, version, sha256, category)
         SELECT 'bench/many-' || n, c.version, c.sha256, 'update'
         FROM changefeed c CROSS JOIN generate_series(1, $1::int) n WHERE c.gun = 'bench/fresh'`,
        [REPOSITORIES],
      );
      await sql('ANALYZE tuf_files');
      await sql('ANALYZE changefeed');
    });
    counts['repositories'] = REPOSITORIES + 2;
    counts['tuf_files rows'] = Number((await sql<{ n: string }>('SELECT count(*) AS n FROM tuf_files')).rows[0]!.n);
    await restart();
    const spread =
      (file: string): Plan =>
      () =>
      () =>
        get(tuf(`bench/many-${1 + Math.floor(Math.random() * REPOSITORIES)}`, file));
    await measure(
      'many-timestamp',
      `${REPOSITORIES.toLocaleString('en')} repositories, a random one each request: GET timestamp.json`,
      spread('timestamp.json'),
      'fresh-timestamp',
    );
    await measure(
      'many-targets',
      `${REPOSITORIES.toLocaleString('en')} repositories, a random one each request: GET targets.json`,
      spread('targets.json'),
      'fresh-targets',
    );
    await measure(
      'many-fresh-timestamp',
      `${REPOSITORIES.toLocaleString('en')} repositories: GET bench/fresh timestamp.json`,
      fixed(tuf('bench/fresh', 'timestamp.json')),
      'fresh-timestamp',
    );

    // 1,000,000 changefeed records.
    await timed(`inserting ${CHANGEFEED} changefeed records`, async () => {
      await sql(
        `INSERT INTO changefeed (gun, version, sha256, category)
         SELECT 'bench/feed-' || (n % 1000), n, encode(sha256(int4send(n)), 'hex'), 'update'
         FROM generate_series(1, $1::int) n`,
        [CHANGEFEED],
      );
      await sql('ANALYZE changefeed');
    });
    const total = Number((await sql<{ n: string }>('SELECT count(*) AS n FROM changefeed')).rows[0]!.n);
    counts['changefeed records'] = total;
    const deepId = (await sql<{ id: string }>('SELECT id FROM changefeed ORDER BY id OFFSET $1 LIMIT 1', [Math.floor(total * 0.9)])).rows[0]!.id;
    counts['deep change_id'] = Number(deepId);
    await restart();
    const c = client as HttpClient | null;
    const t0 = performance.now();
    const first = await c!.request('GET', `/v2/_trust/changefeed?change_id=${deepId}&records=100`);
    const firstMs = performance.now() - t0;
    const firstCount = (JSON.parse(first.body.toString()) as { count?: number }).count;
    say(`scale: first deep changefeed page: ${first.status}, ${firstCount} records, ${firstMs.toFixed(1)} ms`);
    notes.push(`First request for the deep changefeed page after a restart: ${firstMs.toFixed(1)} ms (status ${first.status}, ${firstCount} records).`);
    await measure(
      'feed-deep',
      `changefeed of ${total.toLocaleString('en')} records: GET ?change_id=<90% deep>&records=100`,
      fixed(`/v2/_trust/changefeed?change_id=${deepId}&records=100`),
      'feed-small',
    );
    await measure(
      'feed-latest',
      `changefeed of ${total.toLocaleString('en')} records: GET ?change_id=-1&records=-100 (newest page)`,
      fixed('/v2/_trust/changefeed?change_id=-1&records=-100'),
      'feed-small',
    );
    await measure(
      'feed-gun-deep',
      `changefeed of ${total.toLocaleString('en')} records, one GUN (1,000 records): GET /v2/bench/feed-7/_trust/changefeed?change_id=<deep>&records=100`,
      fixed(`/v2/bench/feed-7/_trust/changefeed?change_id=${deepId}&records=100`),
      'feed-small',
    );

    // A 50,000-target targets.json upload, on a freshly started process.
    const big = await createWriterRepo(client!, 'bench/big');
    await publishOne(client!, big); // version 2: a normal small update first
    const update = bigTargetsUpdate(big, BIG_TARGETS, 3);
    const s = await restart();
    // Let the fresh process settle, then measure the upload alone.
    await (client as HttpClient | null)!.get(tuf('bench/big', 'timestamp.json'));
    const rssBeforeKb = rssKb(s.pid);
    if (!resetPeakRss(s.pid)) notes.push('peak RSS of the upload could not be reset; it is the peak since the process started');
    const u0 = performance.now();
    const res = await (client as HttpClient | null)!.request('POST', `/v2/bench/big/_trust/tuf/`, {
      body: update.body,
      headers: { 'Content-Type': update.contentType },
    });
    const postMs = performance.now() - u0;
    const peak = peakRssKb(s.pid);
    const g0 = performance.now();
    const stored = res.status === 200 ? await (client as HttpClient | null)!.get(tuf('bench/big', 'targets.json')) : Buffer.alloc(0);
    const getMs = performance.now() - g0;
    if (res.status !== 200) notes.push(`The ${BIG_TARGETS}-target upload was refused: ${res.status} ${res.body.toString().slice(0, 300)}`);
    const upload: UploadResult = {
      targets: BIG_TARGETS,
      bodyBytes: update.body.length,
      status: res.status,
      postMs,
      rssBeforeKb,
      peakRssKb: peak,
      getMs,
      getBytes: stored.length,
    };
    say(
      `scale: ${BIG_TARGETS} targets upload (${(update.body.length / 1e6).toFixed(1)} MB): ${res.status} in ${postMs.toFixed(0)} ms, RSS ${((rssBeforeKb ?? 0) / 1024).toFixed(0)} MB -> peak ${((peak ?? 0) / 1024).toFixed(0)} MB; GET back ${getMs.toFixed(0)} ms`,
    );
    return { rows, upload, counts, notes };
  } finally {
    (client as HttpClient | null)?.close();
    await (signet as Target | null)?.stop();
  }
}
