// A token server for Debian's docker-registry configured with `auth: token`:
// it checks Basic credentials and issues JWTs (RS256, the signing
// certificate in the `x5c` header, trusted by the registry through its
// rootcertbundle) granting what the scope asks for to its one user, and
// nothing to anyone else. The registry verifies every token it is shown.
import { execFileSync } from 'node:child_process';
import { randomBytes, sign } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  rootCertFile: string;
  /** Every token request: the scope asked for, the user (or '' when anonymous), the status answered. */
  requests: Array<{ scope: string; user: string; status: number }>;
  stop(): Promise<void>;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export async function startTokenServer(dir: string, user: { username: string; password: string }): Promise<TokenServer> {
  const keyFile = path.join(dir, 'token-key.pem');
  const rootCertFile = path.join(dir, 'token-cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', rootCertFile, '-days', '1', '-subj', '/CN=stevedore-test-token'], { stdio: 'ignore' });
  const key = fs.readFileSync(keyFile);
  const certDer = Buffer.from(
    fs
      .readFileSync(rootCertFile, 'utf8')
      .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
      .replace(/\s+/g, ''),
    'base64',
  );
  const service = 'stevedore-test-registry';
  const issuer = 'stevedore-test-issuer';
  const requests: TokenServer['requests'] = [];

  const token = (subject: string, access: Array<{ type: string; name: string; actions: string[] }>) => {
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] }));
    const claims = b64url(JSON.stringify({ iss: issuer, sub: subject, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access }));
    const signature = b64url(sign('sha256', Buffer.from(`${header}.${claims}`), key));
    return `${header}.${claims}.${signature}`;
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const scope = url.searchParams.get('scope') ?? '';
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    const [name, password] = basic ? Buffer.from(basic[1], 'base64').toString().split(':') : ['', ''];
    const answer = (status: number, body: object) => {
      requests.push({ scope, user: name, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token' || url.searchParams.get('service') !== service) return answer(404, { details: 'no such service' });
    if (basic && (name !== user.username || password !== user.password)) return answer(401, { details: 'wrong credentials' });
    // scope: type:name:actions (the name may hold a port: take the last colon-separated part as the actions).
    const access = [];
    if (scope && basic) {
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      access.push({ type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',') });
    }
    const t = token(basic ? name : '', access);
    answer(200, { token: t, access_token: t, expires_in: 300, issued_at: new Date().toISOString() });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertFile,
    requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
