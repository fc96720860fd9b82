// Transport security between services: unix sockets on one host, TCP with
// mutual TLS across hosts. Plain TCP is allowed only on loopback.
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { TlsFiles } from '@stevedore/config';

export function isUnixAddress(address: string): boolean {
  return address.startsWith('unix:');
}

function isLoopback(address: string): boolean {
  const host = address.replace(/^dns:\/*/, '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function requireTls(address: string, tls: TlsFiles): Required<TlsFiles> {
  if (!tls.cert || !tls.key || !tls.ca) {
    throw new Error(
      `gRPC address ${address} is TCP beyond loopback: set STEVEDORE_GRPC_TLS_CERT, STEVEDORE_GRPC_TLS_KEY and STEVEDORE_GRPC_TLS_CACERT for mutual TLS`,
    );
  }
  return tls as Required<TlsFiles>;
}

export function serverCredentials(address: string, tls: TlsFiles): grpc.ServerCredentials {
  if (isUnixAddress(address) || (isLoopback(address) && !tls.cert)) return grpc.ServerCredentials.createInsecure();
  const t = requireTls(address, tls);
  return grpc.ServerCredentials.createSsl(
    fs.readFileSync(t.ca),
    [{ cert_chain: fs.readFileSync(t.cert), private_key: fs.readFileSync(t.key) }],
    true,
  );
}

export function channelCredentials(address: string, tls: TlsFiles): grpc.ChannelCredentials {
  if (isUnixAddress(address) || (isLoopback(address) && !tls.cert)) return grpc.credentials.createInsecure();
  const t = requireTls(address, tls);
  return grpc.credentials.createSsl(fs.readFileSync(t.ca), fs.readFileSync(t.key), fs.readFileSync(t.cert));
}
