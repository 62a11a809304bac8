/**
 * Where the tests find things. Tests run both from test/ (source) and dist/test/ (compiled), so
 * the project root is found by walking up to Signet's package.json rather than by a fixed `../..`.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'signet') return dir;
      } catch {
        // not ours; keep walking
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`no package.json named "signet" above ${start}`);
  }
}

export const projectRoot = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));

/** Shared reference material (protocol notes, fixtures); override with SIGNET_SHARED_DIR. */
export const sharedDir = process.env['SIGNET_SHARED_DIR'] ? path.resolve(process.env['SIGNET_SHARED_DIR']) : path.resolve(projectRoot, '../shared');

/** The recorded notary 0.7 session (metadata/*.json, requests/*-post-body.multipart). */
export const notarySessionDir = path.join(sharedDir, 'fixtures', 'notary-0.7-session');
