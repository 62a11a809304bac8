// Bundles the client commands (`signet trust`, `signet verify`; `signet cosign`) into one file each after `tsc`:
// loading one module instead of about 140 (most of them zod's) takes a third off their start-up.
// main.ts loads the bundle when it is there and the compiled modules otherwise.
//
// zod's `z.locales` re-exports the messages of some fifty languages, which a namespace import
// keeps in the bundle (over a third of its size); Signet only uses the English messages that
// zod configures itself with, so the locales index is replaced by one that exports `en` alone.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: ['trust-command', 'cosign-command'].map((name) => path.join(root, `dist/src/cli/${name}.js`)),
  outdir: path.join(root, 'dist/src/cli'),
  entryNames: '[name].bundle',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // CommonJS packages that load Node's modules with require() stay outside the ESM bundle (loaded
  // from node_modules when a Cosign command needs them).
  external: ['tweetnacl', '@sigstore/*'],
  plugins: [
    {
      name: 'zod-english-only',
      setup(b) {
        b.onResolve({ filter: /locales\/index\.js$/ }, (args) =>
          args.importer.includes(`${path.sep}zod${path.sep}`)
            ? { path: path.join(path.dirname(args.importer), '../locales/index.js'), namespace: 'zod-locales' }
            : undefined,
        );
        b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
          contents: `export { default as en } from ${JSON.stringify(path.join(path.dirname(args.path), 'en.js'))};`,
          resolveDir: path.dirname(args.path),
        }));
      },
    },
  ],
});
