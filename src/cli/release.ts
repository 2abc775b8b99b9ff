import { ManagerClient } from '../manager-client/client.ts';
import { restoreBundleConfig } from '../oci/bundle.ts';

/** runc's default --root. */
export const DEFAULT_RUNC_ROOT = '/run/runc';

/** Undoes what create did for a container runc no longer has, and puts its config.json back. */
export async function releaseContainer(socket: string, id: string, runtimeRoot: string): Promise<void> {
  const client = await ManagerClient.connect(socket);
  try {
    const released = await client.call('release', { id, runtimeRoot });
    if (released.found && released.bundle !== undefined) restoreBundleConfig(released.bundle);
  } finally {
    client.close();
  }
}
