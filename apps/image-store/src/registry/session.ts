// Talking to one repository of a registry (HTTP API v2): authentication as
// the registry asks for it (basic, or a bearer token from the realm it
// names, scoped to the repository), then plain requests.
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { StevedoreError } from '@stevedore/errors';
import type { RegistryAddress } from './registry-address';

export interface Credentials {
  username: string;
  password: string;
  identityToken?: string;
}

const TIMEOUT_MS = 30_000;

function basicAuth(c: Credentials): string {
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

/** fetch, with a registry that cannot be reached reported as such. */
async function registryFetch(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, { redirect: 'follow', ...init, signal: init.signal ?? AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new StevedoreError('refused', `Cannot reach the registry at ${url}: ${why}`);
  }
}

/** The bearer-token scope of a repository. */
export const repositoryScope = (repository: string, actions: 'pull' | 'push,pull') => `repository:${repository}:${actions}`;
/** The bearer-token scope of the catalog (search). */
export const CATALOG_SCOPE = 'registry:catalog:*';

/** A fetch answer's body as a Node stream (the DOM's and Node's typings name the same stream differently). */
export function responseBody(body: ReadableStream<Uint8Array>): Readable {
  return Readable.fromWeb(body as NodeReadableStream<Uint8Array>);
}

/** A Node stream as a fetch request's body. */
export function requestBody(stream: Readable): ReadableStream<Uint8Array> {
  return Readable.toWeb(stream) as ReadableStream<Uint8Array>;
}

/** What pulling needs of a session: its repository's path, and authenticated requests. */
export type RegistryAccess = Pick<RegistrySession, 'authenticate' | 'fetch' | 'repository'>;

export class RegistrySession {
  private authorization?: string;

  constructor(
    readonly address: RegistryAddress,
    /** The repository path, or '' for registry-wide calls (login, catalog). */
    readonly repository: string,
    private readonly creds: Credentials | undefined,
    /** What a bearer token is asked for: `repository:NAME:pull,push`, `registry:catalog:*`, or '' (a login). */
    private readonly scope: string,
    /**
     * Only a login check answers a refusal with 401: today's CLI meets a 401
     * from pull or push with an interactive credentials prompt.
     */
    private readonly isLogin = false,
  ) {}

  private denied(message: string): StevedoreError {
    return new StevedoreError(this.isLogin ? 'unauthorized' : 'refused', message);
  }

  /** Learns how the registry wants to be spoken to, and gets a token if it wants one. */
  async authenticate(): Promise<void> {
    const ping = await registryFetch(this.address.v2);
    await ping.body?.cancel();
    if (ping.ok) {
      if (this.creds?.username) this.authorization = basicAuth(this.creds);
      return;
    }
    if (ping.status !== 401) throw new StevedoreError('refused', `The registry at ${this.address.v2} answered ${ping.status} ${ping.statusText}`);
    const challenge = parseChallenge(ping.headers.get('www-authenticate') ?? '');
    if (challenge.scheme === 'bearer' && challenge.params.realm) {
      const realm = new URL(challenge.params.realm);
      if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
      if (this.scope) realm.searchParams.set('scope', this.scope);
      if (this.creds?.username) realm.searchParams.set('account', this.creds.username);
      const res = await registryFetch(realm.toString(), { headers: this.creds?.username ? { authorization: basicAuth(this.creds) } : {} });
      if (!res.ok) throw this.refusal(res);
      const body = (await res.json()) as { token?: string; access_token?: string };
      this.authorization = `Bearer ${body.token ?? body.access_token}`;
      return;
    }
    if (!this.creds?.username) throw this.denied(`no basic auth credentials: ${this.address.host} requires a login (docker login ${this.address.host})`);
    this.authorization = basicAuth(this.creds);
    const check = await registryFetch(this.address.v2, { headers: { authorization: this.authorization } });
    await check.body?.cancel();
    if (!check.ok) throw this.refusal(check);
  }

  refusal(res: Response): StevedoreError {
    return this.denied(`Wrong login/password, please try again (login attempt to ${this.address.v2} failed with status: ${res.status} ${res.statusText})`);
  }

  /** A request below /v2/ (absolute URLs, such as upload locations, are taken as they are). */
  async fetch(pathOrUrl: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${this.address.v2}${pathOrUrl}`;
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (this.authorization) headers.authorization = this.authorization;
    const res = await registryFetch(url, { ...init, headers });
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.denied(`${this.address.host} refused access to ${this.repository || 'the registry'} (${res.status}): authentication required`);
    }
    return res;
  }

  /** The absolute URL of an upload location the registry returned. */
  resolve(location: string): string {
    return new URL(location, this.address.v2).toString();
  }
}
