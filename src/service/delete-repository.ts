/** Delete a repository's metadata (all versions); its server keys stay, as in notary. */
import { deleteRepositoryFiles } from '../storage/metadata-store.js';
import { withRepositoryLock, type ServiceContext } from './context.js';

export function deleteRepository(ctx: ServiceContext, gun: string): Promise<number> {
  return withRepositoryLock(ctx, gun, (trx) => deleteRepositoryFiles(trx, gun));
}
