#!/usr/bin/env node
// Runs the compiled test suite with node's test runner. Integration tests use real Postgres when
// TEST_DATABASE_URL is set (as .ci/run does), else the embedded PGlite store.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const only = process.argv.slice(2); // optional folders: unit integration e2e
const suites = only.length ? only : ['unit', 'integration', 'e2e'];

function collect(dir) {
  let out = [];
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries.sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out = out.concat(collect(full));
    else if (name.endsWith('.test.js')) out.push(full);
  }
  return out;
}

const files = suites.flatMap((s) => collect(path.join(root, 'dist', 'test', s)));
if (files.length === 0) {
  console.error('no compiled tests found: run `npm run build` first');
  process.exit(1);
}
console.error(`signet tests: ${files.length} files; database: ${process.env.TEST_DATABASE_URL ? 'Postgres (TEST_DATABASE_URL)' : 'embedded PGlite'}`);
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files], { stdio: 'inherit', cwd: root });
process.exit(result.status ?? 1);
