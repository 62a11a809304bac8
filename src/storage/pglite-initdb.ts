/**
 * The child process that makes a new embedded data directory (`node pglite-initdb.js DIR`):
 * PGlite runs initdb when it opens an empty directory; the process then closes it and exits,
 * which frees the heap initdb grew. Started by `initialiseDataDir` (pglite-engine.ts).
 */
import { openEmbedded } from './pglite-engine.js';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: pglite-initdb DIR');
  process.exit(2);
}
try {
  const { db, wal } = await openEmbedded(dir);
  await db.query('select 1');
  await wal.flush();
  await db.close();
} catch (e) {
  console.error((e as Error).stack ?? String(e));
  process.exit(1);
}
