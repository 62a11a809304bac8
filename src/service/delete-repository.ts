/** Delete a repository's metadata (all versions); its server keys stay, as in notary. */
import { SYSTEM_ACTOR, type Actor } from '../storage/audit-store.js';
import { withRepositoryLock, type ServiceContext } from './context.js';

export function deleteRepository(ctx: ServiceContext, gun: string, actor: Actor = SYSTEM_ACTOR): Promise<number> {
  return withRepositoryLock(ctx, gun, async (stores) => {
    const deleted = await stores.metadata.deleteRepository(gun);
    if (deleted > 0) await stores.audit.append(gun, 'delete', actor, { files: deleted });
    return deleted;
  });
}
