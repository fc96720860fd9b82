// Where a registry is and how to speak to it.

const DEFAULT_INDEX = 'https://index.docker.io/v1/';

export interface RegistryAddress {
  /** host[:port] */
  host: string;
  /** https, or http for loopback and configured insecure registries. */
  scheme: 'http' | 'https';
  /** The base of the Registry HTTP API v2. */
  v2: string;
}

function isLoopbackHost(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || name.startsWith('127.');
}

/**
 * Reads a registry address as Docker clients send it: "host:port",
 * "https://host/v1/", or empty for Docker Hub. HTTP is used for loopback
 * registries and those listed in STEVEDORE_INSECURE_REGISTRIES.
 */
export function parseRegistryAddress(raw: string | undefined, insecure: string[] = []): RegistryAddress {
  let text = (raw ?? '').trim();
  if (text === '' || text === DEFAULT_INDEX || /^(https?:\/\/)?(index\.)?docker\.io(\/.*)?$/.test(text)) {
    text = 'https://registry-1.docker.io';
  }
  let explicit: 'http' | 'https' | undefined;
  const m = /^(https?):\/\/(.*)$/.exec(text);
  if (m) {
    explicit = m[1] as 'http' | 'https';
    text = m[2];
  }
  const host = text.replace(/\/.*$/, '');
  const scheme = explicit ?? (isLoopbackHost(host) || insecure.includes(host) ? 'http' : 'https');
  return { host, scheme, v2: `${scheme}://${host}/v2/` };
}
