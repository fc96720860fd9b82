// Checking credentials against a registry (POST /auth).
import { StevedoreError } from '@stevedore/errors';
import type { RegistryAddress } from './registry-address';
import { RegistrySession, type Credentials } from './session';

/** Resolves with "Login Succeeded" or throws: 401 for wrong credentials, 500 when unreachable. */
export async function checkLogin(address: RegistryAddress, creds: Credentials): Promise<string> {
  const session = new RegistrySession(address, '', creds, '', true);
  try {
    await session.authenticate();
  } catch (err) {
    if (err instanceof StevedoreError && err.kind === 'unauthorized' && !creds.username) {
      throw new StevedoreError('unauthorized', `Wrong login/password, please try again (no username for ${address.v2})`);
    }
    throw err;
  }
  return 'Login Succeeded';
}
