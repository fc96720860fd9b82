// Transport security between services: unix sockets (0600) on one host, TCP
// only with mutual TLS, loopback included: any local user can reach a
// loopback port, and a service's calls are root's powers.
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { TlsFiles } from '@stevedore/config';

export function isUnixAddress(address: string): boolean {
  return address.startsWith('unix:');
}

/** The mutual TLS files a TCP address needs (the services' own); an error naming the settings when one is missing. */
export function requireTls(address: string, tls: TlsFiles): Required<TlsFiles> {
  if (!tls.cert || !tls.key || !tls.ca) {
    throw new Error(
      `gRPC address ${address} is TCP: set STEVEDORE_GRPC_TLS_CERT, STEVEDORE_GRPC_TLS_KEY and STEVEDORE_GRPC_TLS_CACERT for mutual TLS (plain TCP is refused, loopback included)`,
    );
  }
  return tls as Required<TlsFiles>;
}

export function serverCredentials(address: string, tls: TlsFiles): grpc.ServerCredentials {
  if (isUnixAddress(address)) return grpc.ServerCredentials.createInsecure();
  const t = requireTls(address, tls);
  return grpc.ServerCredentials.createSsl(
    fs.readFileSync(t.ca),
    [{ cert_chain: fs.readFileSync(t.cert), private_key: fs.readFileSync(t.key) }],
    true,
  );
}

export function channelCredentials(address: string, tls: TlsFiles): grpc.ChannelCredentials {
  if (isUnixAddress(address)) return grpc.credentials.createInsecure();
  const t = requireTls(address, tls);
  return grpc.credentials.createSsl(fs.readFileSync(t.ca), fs.readFileSync(t.key), fs.readFileSync(t.cert));
}
