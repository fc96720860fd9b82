// TCP only with TLS: the API on tcp:// with client certificates, and the
// services reached over TCP with mutual TLS, using infra/gen-certs.sh.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bridgeNatRule, freePort, REPO, runCommand, shortTempDir, startStack, stopStack, type Stack } from './harness';

describe('TLS', () => {
  let stack: Stack;
  let certs: string;
  let apiPort: number;

  before(async () => {
    certs = shortTempDir('certs-');
    const gen = await runCommand(path.join(REPO, 'infra', 'gen-certs.sh'), [certs]);
    assert.equal(gen.code, 0, gen.stderr);
    apiPort = await freePort();
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const c = (name: string) => path.join(certs, name);
    stack = await startStack({
      STEVEDORE_HOST: `unix:///tmp/${path.basename(certs)}.sock,tcp://127.0.0.1:${apiPort}`,
      STEVEDORE_TLS_CERT: c('api-edge.pem'),
      STEVEDORE_TLS_KEY: c('api-edge-key.pem'),
      STEVEDORE_TLS_CACERT: c('ca.pem'),
      STEVEDORE_EVENTS_ADDR: `127.0.0.1:${ports[0]}`,
      STEVEDORE_IMAGE_STORE_ADDR: `127.0.0.1:${ports[1]}`,
      STEVEDORE_CONTAINER_RUNTIME_ADDR: `127.0.0.1:${ports[2]}`,
      STEVEDORE_BUILD_WORKER_ADDR: `127.0.0.1:${ports[3]}`,
      STEVEDORE_GRPC_TLS_CERT: c('events.pem'),
      STEVEDORE_GRPC_TLS_KEY: c('events-key.pem'),
      STEVEDORE_GRPC_TLS_CACERT: c('ca.pem'),
    }, `unix:///tmp/${path.basename(certs)}.sock`);
  });
  after(async () => {
    await stopStack(stack);
    fs.rmSync(certs, { recursive: true, force: true });
  });

  test('the docker CLI with a client certificate reaches the API over TCP, and the services over mutual TLS', async () => {
    const c = (name: string) => path.join(certs, name);
    const r = await runCommand('docker', [
      '-H', `tcp://127.0.0.1:${apiPort}`, '--tlsverify', '--tlscacert', c('ca.pem'), '--tlscert', c('client.pem'), '--tlskey', c('client-key.pem'),
      'info', '--format', '{{.OSType}} {{.Containers}}',
    ], { env: { ...process.env, DOCKER_CONFIG: stack.dockerConfig } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'linux 0');
  });

  test('without a client certificate the TCP API refuses the connection', async () => {
    const r = await runCommand('docker', ['-H', `tcp://127.0.0.1:${apiPort}`, '--tls', '--tlscacert', path.join(certs, 'ca.pem'), 'version'], {
      env: { ...process.env, DOCKER_CONFIG: stack.dockerConfig },
      timeoutMs: 20_000,
    });
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /API version:\s+1\.12 \(minimum/);
  });

  test('tcp:// without TLS settings is refused at start-up', async () => {
    const port = await freePort();
    const root = shortTempDir('sd-');
    // A bridge of its own: the runtime starts (and makes the bridge's NAT rule) before the edge refuses.
    const env = { ...process.env, STEVEDORE_ROOT: root, STEVEDORE_HOST: `tcp://127.0.0.1:${port}`, STEVEDORE_BRIDGE: `sdtls${process.pid % 100000}`, STEVEDORE_BRIDGE_SUBNET: '10.212.250.0/24' };
    const r = await runCommand(path.join(REPO, 'stevedore'), ['up', '--timeout', '20'], { env, timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Refusing to listen on tcp:\/\/127\.0\.0\.1:\d+ without TLS/);
    await runCommand(path.join(REPO, 'stevedore'), ['down'], { env });
    spawnSync('iptables', ['-w', '-t', 'nat', '-D', ...bridgeNatRule(env)], { stdio: 'ignore' });
    fs.rmSync(root, { recursive: true, force: true });
  });
});
