/**
 * What ships: every package the compiled code imports at run time is a runtime dependency (an
 * install without dev dependencies, as `npm pack` users and the Docker image get, must run
 * every command), `npm pack` ships the compiled code, migrations and the client bundle, and
 * the Dockerfile copies everything `npm run build` reads.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../support/paths.js';

const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  /** Loaded lazily, only where a setting asks for them (pkcs11js, for SIGNET_PKCS11_MODULE). */
  optionalDependencies?: Record<string, string>;
  scripts: Record<string, string>;
  files: string[];
  exports: Record<string, string | { types: string; default: string }>;
};

function jsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return jsFiles(full);
    return name.endsWith('.js') && !name.endsWith('.bundle.js') ? [full] : [];
  });
}

test('every package the compiled code imports is a runtime dependency', () => {
  const builtins = new Set(builtinModules);
  const missing = new Set<string>();
  for (const file of jsFiles(path.join(projectRoot, 'dist', 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s*'([^']+)'|import\(\s*'([^']+)'\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!pkg.dependencies[name] && !pkg.optionalDependencies?.[name]) missing.add(`${name} (${path.relative(projectRoot, file)})`);
    }
  }
  assert.deepEqual([...missing], [], 'imported at run time but not in dependencies');
});

test('npm pack ships the compiled code, the client bundle and the migrations', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: projectRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  for (const f of [
    'dist/src/cli/main.js',
    'dist/src/cli/trust-command.bundle.js',
    'dist/src/client/index.js',
    'dist/src/client/index.d.ts',
    'dist/src/gate/gate-server.js',
    'package.json',
  ]) {
    assert.ok(files.has(f), `${f} is packed`);
  }
  for (const [entry, target] of Object.entries(pkg.exports)) {
    for (const file of typeof target === 'string' ? [target] : [target.types, target.default]) {
      assert.ok(files.has(file.replace(/^\.\//, '')), `${file} (the export ${entry}) is packed`);
    }
  }
  assert.ok(
    [...files].some((f) => f.startsWith('migrations/')),
    'migrations are packed',
  );
  assert.ok(![...files].some((f) => f.startsWith('dist/test/')), 'tests are not packed');
});

test('the Dockerfile copies everything npm run build reads', () => {
  const dockerfile = readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8');
  const copied = [...dockerfile.matchAll(/^COPY\s+(.+?)\s+\S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
  const build = pkg.scripts['build']!;
  const needed = ['tsconfig.json', 'src', 'migrations', ...[...build.matchAll(/node (\S+)/g)].map((m) => m[1]!.split('/')[0]!)];
  for (const n of needed) assert.ok(copied.includes(n), `the Dockerfile copies ${n} (build: ${build})`);
});
