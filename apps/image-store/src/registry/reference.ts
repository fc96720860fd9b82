// Which registry a repository name lives in: the first component when it
// holds a '.' or ':' or is localhost (Docker's rule), else Docker Hub.
import { parseRegistryAddress, type RegistryAddress } from './registry-address';

export interface RemoteRepository {
  address: RegistryAddress;
  /** The repository's path in the registry (library/ for Docker Hub names without a namespace). */
  path: string;
}

export function remoteRepository(repo: string, insecure: string[]): RemoteRepository {
  const parts = repo.split('/');
  const first = parts[0];
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    return { address: parseRegistryAddress(first, insecure), path: parts.slice(1).join('/') };
  }
  return { address: parseRegistryAddress('', insecure), path: parts.length === 1 ? `library/${repo}` : repo };
}
