// Which registry a repository name lives in (see registryHost), and the
// repository's path there.
import { registryHost } from '../store/names';
import { parseRegistryAddress, type RegistryAddress } from './registry-address';

export interface RemoteRepository {
  address: RegistryAddress;
  /** The repository's path in the registry (library/ for Docker Hub names without a namespace). */
  path: string;
}

export function remoteRepository(repo: string, insecure: string[]): RemoteRepository {
  const host = registryHost(repo);
  if (host !== undefined) return { address: parseRegistryAddress(host, insecure), path: repo.slice(host.length + 1) };
  return { address: parseRegistryAddress('', insecure), path: repo.includes('/') ? repo : `library/${repo}` };
}
