/** Delete a repository's metadata (all versions); its server keys stay, as in notary. */
import { appendAudit, SYSTEM_ACTOR, type Actor } from '../storage/audit-store.js';
import { deleteRepositoryFiles } from '../storage/metadata-store.js';
import { withRepositoryLock, type ServiceContext } from './context.js';

export function deleteRepository(ctx: ServiceContext, gun: string, actor: Actor = SYSTEM_ACTOR): Promise<number> {
  return withRepositoryLock(ctx, gun, async (trx) => {
    const deleted = await deleteRepositoryFiles(trx, gun);
    if (deleted > 0) await appendAudit(trx, gun, 'delete', actor, { files: deleted });
    return deleted;
  });
}
