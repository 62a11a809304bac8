/**
 * The public halves of server-held keys (`GET|POST {timestamp,snapshot}.key`). Clients fetch a
 * key before they publish a root that lists it, so keys exist before the repository does.
 */
import { readSigned, rootSchema } from '../tuf/notary/metadata.js';
import { SYSTEM_ACTOR, type Actor } from '../storage/audit-store.js';
import type { ServerKeyRole } from '../storage/server-key-store.js';
import type { PublicServerKey } from '../signing/key-service.js';
import { withRepositoryLock, type ServiceContext } from './context.js';
import { NotFoundError } from './errors.js';
import { currentRoleFile } from './repository-state.js';

/** The key the current root lists for `role` if the server holds it; else a pending or new key. */
export function getServerKey(ctx: ServiceContext, gun: string, role: ServerKeyRole): Promise<PublicServerKey> {
  return withRepositoryLock(
    ctx,
    gun,
    async (stores) => {
      const rootRow = await currentRoleFile(stores.metadata, ctx.cache, gun, 'root');
      if (rootRow) {
        const root = readSigned(rootSchema, ctx.cache.parse(rootRow));
        const listed = new Set(root.ok ? (root.value.roles[role]?.keyids ?? []) : []);
        const held = (await stores.serverKeys.ofRepository(gun)).find((k) => k.role === role && listed.has(k.keyId));
        if (held) return held;
      }
      return ctx.keys.pendingOrCreate(stores, gun, role);
    },
    { changesMetadata: false },
  );
}

/**
 * A key to rotate to: a pending one if a rotation was already asked for, else a new one.
 * `existingOnly` refuses a repository with no published metadata (NotFoundError): over HTTP a
 * client may rotate before its first publish, as notary-server allows, but an operator naming a
 * repository that does not exist has most likely mistyped it.
 */
export function rotateServerKey(
  ctx: ServiceContext,
  gun: string,
  role: ServerKeyRole,
  actor: Actor = SYSTEM_ACTOR,
  opts: { existingOnly?: boolean } = {},
): Promise<PublicServerKey> {
  return withRepositoryLock(
    ctx,
    gun,
    async (stores) => {
      if (opts.existingOnly) {
        if (!(await stores.metadata.exists(gun))) throw new NotFoundError(`no repository ${gun}`);
      }
      const key = await ctx.keys.pendingOrCreate(stores, gun, role);
      await stores.audit.append(gun, 'rotate_key', actor, { role, keyId: key.keyId });
      return key;
    },
    { changesMetadata: false },
  );
}
