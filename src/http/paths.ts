/**
 * The Notary v1 URL space (notary's `server/server.go` routes, first match wins), parsed by
 * hand: GUNs and delegation roles both contain slashes, so matching must be exactly notary's.
 */

const ROLE = 'root|targets(?:/[^/\\s]+)*|snapshot|timestamp';
const GUN = '[^*]+';
const CHECKSUM = '[a-fA-F0-9]{64}|[a-fA-F0-9]{96}|[a-fA-F0-9]{128}';

const ROUTES = {
  // Any name: a write to one Signet refuses (`*` among them) is told why (INVALID_GUN) rather
  // than finding no route; reads keep notary's `[^*]+` and find nothing.
  update: new RegExp(`^/v2/(?<gun>[\\s\\S]+)/_trust/tuf/$`),
  byChecksum: new RegExp(`^/v2/(?<gun>${GUN})/_trust/tuf/(?<role>${ROLE})\\.(?<checksum>${CHECKSUM})\\.json$`),
  byVersion: new RegExp(`^/v2/(?<gun>${GUN})/_trust/tuf/(?<version>[1-9]*[0-9]+)\\.(?<role>${ROLE})\\.json$`),
  current: new RegExp(`^/v2/(?<gun>${GUN})/_trust/tuf/(?<role>${ROLE})\\.json$`),
  key: new RegExp(`^/v2/(?<gun>${GUN})/_trust/tuf/(?<role>snapshot|timestamp)\\.key$`),
  changefeed: new RegExp(`^/v2/(?<gun>${GUN})/_trust/changefeed$`),
} as const;

// ---- staged updates (key ceremonies): /api/v1/repositories/{gun}/staged… ----
const STAGED_ID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const STAGED_ROUTES = {
  collection: /^\/api\/v1\/repositories\/(?<gun>.+)\/staged$/,
  item: new RegExp(`^/api/v1/repositories/(?<gun>.+)/staged/(?<id>${STAGED_ID})$`),
  signatures: new RegExp(`^/api/v1/repositories/(?<gun>.+)/staged/(?<id>${STAGED_ID})/signatures$`),
} as const;

export type StagedRoute =
  | { kind: 'stageUpdate' | 'listStaged'; gun: string }
  | { kind: 'getStaged' | 'signStaged' | 'cancelStaged'; gun: string; id: string }
  | { kind: 'listAllStaged' };

/** The staged-update routes; null when the path is not one of them. */
function matchStagedRoute(method: string, path: string): StagedRoute | null {
  if (!path.startsWith('/api/v1/')) return null;
  if (path === '/api/v1/staged') return method === 'GET' ? { kind: 'listAllStaged' } : null;
  let m: RegExpExecArray | null;
  if ((m = STAGED_ROUTES.signatures.exec(path))) return method === 'POST' ? { kind: 'signStaged', gun: m.groups!['gun']!, id: m.groups!['id']! } : null;
  if ((m = STAGED_ROUTES.item.exec(path))) {
    if (method === 'GET') return { kind: 'getStaged', gun: m.groups!['gun']!, id: m.groups!['id']! };
    if (method === 'DELETE') return { kind: 'cancelStaged', gun: m.groups!['gun']!, id: m.groups!['id']! };
    return null;
  }
  if ((m = STAGED_ROUTES.collection.exec(path))) {
    if (method === 'POST') return { kind: 'stageUpdate', gun: m.groups!['gun']! };
    if (method === 'GET') return { kind: 'listStaged', gun: m.groups!['gun']! };
  }
  return null;
}
// ---- end of staged updates ----

// ---- server-held signers: /api/v1/repositories/{gun}/signers… ----
const SIGNER = '[a-z0-9][a-z0-9_-]{0,199}';
const SIGNER_ROUTES = {
  collection: /^\/api\/v1\/repositories\/(?<gun>.+)\/signers$/,
  item: new RegExp(`^/api/v1/repositories/(?<gun>.+)/signers/(?<name>${SIGNER})$`),
  action: new RegExp(`^/api/v1/repositories/(?<gun>.+)/signers/(?<name>${SIGNER})/(?<action>disable|enable|rotate|rules|sign)$`),
} as const;

export type SignerRoute =
  | { kind: 'createSigner' | 'listSigners'; gun: string }
  | { kind: 'getSigner' | 'deleteSigner' | 'disableSigner' | 'enableSigner' | 'rotateSigner' | 'setSignerRules' | 'signWithSigner'; gun: string; name: string };

const SIGNER_ACTIONS = { disable: 'disableSigner', enable: 'enableSigner', rotate: 'rotateSigner', sign: 'signWithSigner' } as const;

/** The signer routes; null when the path is not one of them. */
function matchSignerRoute(method: string, path: string): SignerRoute | null {
  if (!path.startsWith('/api/v1/repositories/')) return null;
  let m: RegExpExecArray | null;
  if ((m = SIGNER_ROUTES.action.exec(path))) {
    const { gun, name, action } = m.groups as { gun: string; name: string; action: keyof typeof SIGNER_ACTIONS | 'rules' };
    if (action === 'rules') return method === 'PUT' ? { kind: 'setSignerRules', gun, name } : null;
    return method === 'POST' ? { kind: SIGNER_ACTIONS[action], gun, name } : null;
  }
  if ((m = SIGNER_ROUTES.item.exec(path))) {
    const { gun, name } = m.groups as { gun: string; name: string };
    if (method === 'GET') return { kind: 'getSigner', gun, name };
    if (method === 'DELETE') return { kind: 'deleteSigner', gun, name };
    return null;
  }
  if ((m = SIGNER_ROUTES.collection.exec(path))) {
    if (method === 'POST') return { kind: 'createSigner', gun: m.groups!['gun']! };
    if (method === 'GET') return { kind: 'listSigners', gun: m.groups!['gun']! };
  }
  return null;
}
// ---- end of server-held signers ----
// ---- the inspector: read API under /api/v1/, pages under /ui/ ----
const INSPECTOR_ROUTES = {
  history: /^\/api\/v1\/repositories\/(?<gun>.+)\/history$/,
  diff: /^\/api\/v1\/repositories\/(?<gun>.+)\/diff$/,
  repository: /^\/api\/v1\/repositories\/(?<gun>.+)$/,
  uiRepository: /^\/ui\/repositories\/(?<gun>.+)$/,
} as const;

export type UiPage = 'repositories' | 'expiring' | 'audit' | 'login' | 'style';

export type InspectorRoute =
  | { kind: 'listRepositories' | 'apiExpiring' | 'apiAudit' }
  | { kind: 'getRepository' | 'repositoryHistory' | 'roleDiff'; gun: string }
  | { kind: 'uiHome' }
  | { kind: 'uiPage'; page: UiPage }
  | { kind: 'uiRepository'; gun: string }
  | { kind: 'uiLogin' | 'uiLogout' };

const UI_PAGES: Record<string, UiPage> = {
  '/ui/': 'repositories',
  '/ui': 'repositories',
  '/ui/expiring': 'expiring',
  '/ui/audit': 'audit',
  '/ui/login': 'login',
  '/ui/static/signet.css': 'style',
};

/** The inspector's routes; null when the path is not one of them. Everything but login and logout is GET. */
function matchInspectorRoute(method: string, path: string): InspectorRoute | null {
  if (path === '/' && method === 'GET') return { kind: 'uiHome' };
  if (path.startsWith('/ui')) {
    if (method === 'POST') return path === '/ui/login' ? { kind: 'uiLogin' } : path === '/ui/logout' ? { kind: 'uiLogout' } : null;
    if (method !== 'GET') return null;
    const page = UI_PAGES[path];
    if (page) return { kind: 'uiPage', page };
    const m = INSPECTOR_ROUTES.uiRepository.exec(path);
    return m ? { kind: 'uiRepository', gun: m.groups!['gun']! } : null;
  }
  if (!path.startsWith('/api/v1/') || method !== 'GET') return null;
  if (path === '/api/v1/repositories') return { kind: 'listRepositories' };
  if (path === '/api/v1/expiring') return { kind: 'apiExpiring' };
  if (path === '/api/v1/audit') return { kind: 'apiAudit' };
  let m: RegExpExecArray | null;
  if ((m = INSPECTOR_ROUTES.history.exec(path))) return { kind: 'repositoryHistory', gun: m.groups!['gun']! };
  if ((m = INSPECTOR_ROUTES.diff.exec(path))) return { kind: 'roleDiff', gun: m.groups!['gun']! };
  if ((m = INSPECTOR_ROUTES.repository.exec(path))) return { kind: 'getRepository', gun: m.groups!['gun']! };
  return null;
}
// ---- end of the inspector ----

export type Route =
  | { kind: 'ping' }
  | { kind: 'health' }
  | { kind: 'ready' }
  | { kind: 'metrics' }
  | { kind: 'audit' }
  | { kind: 'expiring' }
  | { kind: 'history'; gun: string }
  | { kind: 'globalChangefeed' }
  | { kind: 'update' | 'delete'; gun: string }
  | { kind: 'byChecksum'; gun: string; role: string; checksum: string }
  | { kind: 'byVersion'; gun: string; role: string; version: number }
  | { kind: 'current'; gun: string; role: string }
  | { kind: 'getKey' | 'rotateKey'; gun: string; role: 'snapshot' | 'timestamp' }
  | { kind: 'changefeed'; gun: string }
  | StagedRoute
  | SignerRoute
  | InspectorRoute
  | { kind: 'notFound' };

/** Whether a (raw, undecoded) path and method are a write to a repository. */
export function isWriteShaped(method: string, rawPath: string): boolean {
  return (method === 'POST' || method === 'DELETE') && ROUTES.update.test(rawPath);
}

/** Match a decoded path and method to a route. */
export function matchRoute(method: string, path: string): Route {
  if (path === '/v2/' && method === 'GET') return { kind: 'ping' };
  if (path === '/_notary_server/health' && method === 'GET') return { kind: 'health' };
  if (path === '/_signet/ready' && method === 'GET') return { kind: 'ready' };
  if (path === '/metrics' && method === 'GET') return { kind: 'metrics' };
  if (path === '/_signet/audit' && method === 'GET') return { kind: 'audit' };
  if (path === '/_signet/expiring' && method === 'GET') return { kind: 'expiring' };
  if (path.startsWith('/_signet/history/') && method === 'GET' && path.length > 17) return { kind: 'history', gun: path.slice(17) };
  if (path === '/v2/_trust/changefeed' && method === 'GET') return { kind: 'globalChangefeed' };
  const staged = matchStagedRoute(method, path);
  if (staged) return staged;
  const signer = matchSignerRoute(method, path);
  if (signer) return signer;
  const inspector = matchInspectorRoute(method, path);
  if (inspector) return inspector;
  let m: RegExpExecArray | null;
  if ((m = ROUTES.update.exec(path))) {
    if (method === 'POST') return { kind: 'update', gun: m.groups!['gun']! };
    if (method === 'DELETE') return { kind: 'delete', gun: m.groups!['gun']! };
  }
  if (method === 'GET') {
    if ((m = ROUTES.byChecksum.exec(path))) {
      const { gun, role, checksum } = m.groups!;
      return { kind: 'byChecksum', gun: gun!, role: role!, checksum: checksum! };
    }
    if ((m = ROUTES.byVersion.exec(path))) {
      const { gun, role, version } = m.groups!;
      return { kind: 'byVersion', gun: gun!, role: role!, version: Number(version) };
    }
    if ((m = ROUTES.current.exec(path))) return { kind: 'current', gun: m.groups!['gun']!, role: m.groups!['role']! };
    if ((m = ROUTES.changefeed.exec(path))) return { kind: 'changefeed', gun: m.groups!['gun']! };
  }
  if ((m = ROUTES.key.exec(path)) && (method === 'GET' || method === 'POST')) {
    const role = m.groups!['role'] as 'snapshot' | 'timestamp';
    return { kind: method === 'GET' ? 'getKey' : 'rotateKey', gun: m.groups!['gun']!, role };
  }
  return { kind: 'notFound' };
}

/**
 * GUNs Signet accepts: notary only forbids `*`; Signet also refuses what no registry name can
 * be and what would be unsafe to log or store: over 255 bytes, control characters or spaces,
 * empty, `.` or `..` segments.
 */
export function gunProblem(gun: string): string | null {
  if (Buffer.byteLength(gun, 'utf8') > 255) return 'the name is longer than 255 bytes';
  if (gun.includes('*')) return 'the name contains "*"';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f\u2028\u2029]/.test(gun)) return 'the name contains control characters or spaces';
  for (const segment of gun.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return 'the name has an empty, "." or ".." path segment';
  }
  return null;
}
