// X-Registry-Auth: base64url (or standard base64, padding optional) of an
// AuthConfig. Docker 1.0 went on without credentials when it could not be
// read; so does Stevedore.
import type { images } from '@stevedore/contracts';
import type { AuthConfigJson } from '@stevedore/docker-api';
import type { ApiRequest } from './api-request';

export function authConfig(json: AuthConfigJson | undefined): images.AuthConfig {
  return {
    username: String(json?.username ?? ''),
    password: String(json?.password ?? ''),
    auth: String(json?.auth ?? ''),
    email: String(json?.email ?? ''),
    serverAddress: String(json?.serveraddress ?? ''),
    identityToken: String(json?.identitytoken ?? ''),
    registryToken: String(json?.registrytoken ?? ''),
  };
}

export function registryAuth(req: Pick<ApiRequest, 'header'>): images.AuthConfig {
  const header = req.header('x-registry-auth');
  if (!header) return authConfig(undefined);
  try {
    const text = Buffer.from(header.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    const parsed = JSON.parse(text) as unknown;
    return authConfig(typeof parsed === 'object' && parsed !== null ? (parsed as AuthConfigJson) : undefined);
  } catch {
    return authConfig(undefined);
  }
}
