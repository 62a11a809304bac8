/** The access each route needs, in the registry token scope model (notary's `server.go`). */

/**
 * A request as authorization sees it: what kind of route, and on which repository. The HTTP
 * layer's routes have this shape; auth does not depend on the HTTP layer.
 */
export type AccessRoute =
  | { kind: 'health' | 'ready' | 'metrics' | 'audit' | 'expiring' | 'ping' | 'globalChangefeed' | 'notFound' }
  | { kind: 'update' | 'getKey' | 'delete' | 'rotateKey' | 'current' | 'byChecksum' | 'byVersion' | 'changefeed' | 'history'; gun: string }
  // staged updates (key ceremonies)
  | { kind: 'listAllStaged' }
  | { kind: 'stageUpdate' | 'listStaged' | 'getStaged' | 'signStaged' | 'cancelStaged'; gun: string }
  // server-held signers
  | {
      kind:
        'createSigner' | 'listSigners' | 'getSigner' | 'deleteSigner' | 'disableSigner' | 'enableSigner' | 'rotateSigner' | 'setSignerRules' | 'signWithSigner';
      gun: string;
    }
  // the inspector: the read API takes tokens; the pages have their own login (a session)
  | { kind: 'listRepositories' | 'apiExpiring' | 'apiAudit' | 'uiHome' | 'uiPage' | 'uiLogin' | 'uiLogout' }
  | { kind: 'getRepository' | 'repositoryHistory' | 'roleDiff' | 'uiRepository'; gun: string };

export interface Access {
  type: 'repository' | 'registry';
  name: string;
  action: string;
}

const catalog: Access[] = [{ type: 'registry', name: 'catalog', action: '*' }];
const repo = (gun: string, ...actions: string[]): Access[] => actions.map((action) => ({ type: 'repository', name: gun, action }));

/** null: the route is open (health). */
export function requiredAccess(route: AccessRoute): Access[] | null {
  switch (route.kind) {
    case 'health':
    case 'ready':
      return null;
    case 'metrics':
    case 'audit':
    case 'expiring':
    case 'ping':
    case 'globalChangefeed':
    case 'notFound':
      return catalog;
    case 'update':
    case 'getKey':
      return repo(route.gun, 'push', 'pull');
    case 'delete':
    case 'rotateKey':
      return repo(route.gun, '*');
    case 'current':
    case 'byChecksum':
    case 'byVersion':
    case 'changefeed':
    case 'history':
      return repo(route.gun, 'pull');
    // ---- staged updates (key ceremonies): staging, signing and cancelling write; reads pull ----
    case 'stageUpdate':
    case 'signStaged':
    case 'cancelStaged':
      return repo(route.gun, 'push', 'pull');
    case 'listStaged':
    case 'getStaged':
      return repo(route.gun, 'pull');
    case 'listAllStaged':
      return catalog;
    // ---- server-held signers: managing them is the repository admin's (`*`, as deleting the
    // repository or rotating its server keys); reading one (its public key and certificate,
    // which the owner delegates to) needs pull; signing with one needs push ----
    case 'createSigner':
    case 'deleteSigner':
    case 'disableSigner':
    case 'enableSigner':
    case 'rotateSigner':
    case 'setSignerRules':
      return repo(route.gun, '*');
    case 'listSigners':
    case 'getSigner':
      return repo(route.gun, 'pull');
    case 'signWithSigner':
      return repo(route.gun, 'push');
    // ---- the inspector: one repository needs pull on it, lists across repositories the catalog ----
    case 'getRepository':
    case 'repositoryHistory':
    case 'roleDiff':
      return repo(route.gun, 'pull');
    case 'listRepositories':
    case 'apiExpiring':
    case 'apiAudit':
      return catalog;
    // The pages check their session themselves (src/ui/session.ts): a browser has no bearer token.
    case 'uiHome':
    case 'uiPage':
    case 'uiRepository':
    case 'uiLogin':
    case 'uiLogout':
      return null;
  }
}

/** `scope` value of a challenge: `repository:<gun>:push,pull` (several resources space-separated). */
export function scopeOf(accesses: readonly Access[]): string {
  const byResource = new Map<string, string[]>();
  for (const a of accesses) {
    const key = `${a.type}:${a.name}`;
    byResource.set(key, [...(byResource.get(key) ?? []), a.action]);
  }
  return [...byResource].map(([resource, actions]) => `${resource}:${actions.join(',')}`).join(' ');
}
