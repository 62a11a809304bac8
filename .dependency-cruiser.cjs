/**
 * The import boundaries of src/ (docs/overview.md, "Code layout"): each folder is one concept
 * and imports go one way. `npm run check:boundaries` fails on any of these.
 */
const CLIENT_SIDE = '^src/(client|registry|gate|cosign|net)/';

module.exports = {
  forbidden: [
    {
      name: 'tuf-is-pure',
      comment: 'src/tuf holds the rules only: it imports nothing else of Signet.',
      severity: 'error',
      from: { path: '^src/tuf/' },
      to: { path: '^src/', pathNot: '^src/tuf/' },
    },
    {
      name: 'tuf-core-below-the-dialect',
      comment: 'src/tuf/core (canonical JSON, keys, signatures, hashes, time, certificate reading) knows nothing of Notary v1: src/tuf/notary builds on it.',
      severity: 'error',
      from: { path: '^src/tuf/core/' },
      to: { path: '^src/tuf/', pathNot: '^src/tuf/core/' },
    },
    {
      name: 'scan-is-pure',
      comment: 'src/scan reads and judges scan reports from bytes it is given: it imports only src/tuf/core of Signet, and no I/O.',
      severity: 'error',
      from: { path: '^src/scan/' },
      to: { path: '^src/(?!scan/|tuf/core/)' },
    },
    {
      name: 'scan-does-no-io',
      comment: 'No files, network or processes from src/scan.',
      severity: 'error',
      from: { path: '^src/scan/' },
      to: { dependencyTypes: ['core'], path: '^(node:)?(fs|fs/promises|net|http|https|http2|dgram|dns|child_process|worker_threads|cluster)$' },
    },
    {
      name: 'storage-below-everything-but-tuf',
      comment: 'src/storage writes the SQL; it may use src/tuf and nothing else of Signet.',
      severity: 'error',
      from: { path: '^src/storage/' },
      to: { path: '^src/', pathNot: '^src/(storage|tuf)/' },
    },
    {
      name: 'http-not-storage',
      comment: 'src/http calls use cases (src/service), never the stores.',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { path: '^src/storage/' },
    },
    {
      name: 'auth-not-http',
      comment: 'src/auth verifies tokens; the HTTP layer uses it, not the other way round.',
      severity: 'error',
      from: { path: '^src/auth/' },
      to: { path: '^src/http/' },
    },
    {
      name: 'client-side-not-server',
      comment: 'The client, registry, gate, Cosign and network code must start fast: no storage, HTTP server or server assembly.',
      severity: 'error',
      from: { path: CLIENT_SIDE },
      to: { path: '^src/(storage|http|service|signing|import)/|^src/server\\.ts$' },
    },
    {
      name: 'client-side-no-server-packages',
      comment: 'Nor may it load the database drivers or express, directly or through what it imports.',
      severity: 'error',
      from: { path: CLIENT_SIDE },
      to: { path: 'node_modules/(pg|pg-[^/]+|@electric-sql/pglite|express|kysely|mysql2)/', reachable: true },
    },
    {
      name: 'client-commands-no-server-packages',
      comment: '`signet trust`, `signet verify` and `signet gate` start as fast as the SDK: they never load the server side.',
      severity: 'error',
      from: { path: '^src/cli/(trust|gate|cosign)-command\\.ts$' },
      to: {
        path: '^src/(storage|http|service|signing|import)/|^src/server\\.ts$|node_modules/(pg|pg-[^/]+|@electric-sql/pglite|express|kysely|mysql2)/',
        reachable: true,
      },
    },
    {
      name: 'ui-not-storage',
      comment:
        'src/ui renders pages from the service read models (src/service/inspector.ts); it never reads the stores, nor the HTTP internals that route to it.',
      severity: 'error',
      from: { path: '^src/ui/' },
      to: { path: '^src/(storage|http|signing|import)/' },
    },
    {
      name: 'no-circular',
      comment: 'Cycles hide which part depends on which.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
