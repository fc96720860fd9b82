// Checking credentials against a registry (POST /auth): the Registry HTTP
// API v2 base endpoint, with basic auth or a bearer token from the realm the
// registry names.
import { StevedoreError, unauthorized } from '@stevedore/errors';
import type { RegistryAddress } from './registry-address';

export interface Credentials {
  username: string;
  password: string;
}

const TIMEOUT_MS = 15_000;

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

/** Parses `Bearer realm="…",service="…",scope="…"` into its parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const sp = header.indexOf(' ');
  const scheme = (sp < 0 ? header : header.slice(0, sp)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(sp + 1).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return { scheme, params };
}

async function get(url: string, headers: Record<string, string>): Promise<Response> {
  try {
    return await fetch(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new StevedoreError('internal', `Cannot reach the registry at ${url}: ${why}`);
  }
}

function refused(address: RegistryAddress, res: Response): StevedoreError {
  return unauthorized(`Wrong login/password, please try again (login attempt to ${address.v2} failed with status: ${res.status} ${res.statusText})`);
}

/** Resolves with "Login Succeeded" or throws: 401 for wrong credentials, 500 when unreachable. */
export async function checkLogin(address: RegistryAddress, creds: Credentials): Promise<string> {
  const first = await get(address.v2, {});
  if (first.ok) return 'Login Succeeded';
  if (first.status !== 401) {
    throw new StevedoreError('internal', `Login to ${address.v2} failed: the registry answered ${first.status} ${first.statusText}`);
  }
  const challenge = parseChallenge(first.headers.get('www-authenticate') ?? '');
  if (!creds.username) throw refused(address, first);
  if (challenge.scheme === 'bearer' && challenge.params.realm) {
    const realm = new URL(challenge.params.realm);
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    realm.searchParams.set('account', creds.username);
    const token = await get(realm.toString(), { authorization: basic(creds) });
    if (!token.ok) throw refused(address, token);
    return 'Login Succeeded';
  }
  const again = await get(address.v2, { authorization: basic(creds) });
  if (again.ok) return 'Login Succeeded';
  throw refused(address, again);
}
