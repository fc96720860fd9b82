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

  test('a client certificate from another CA is refused', async () => {
    const other = shortTempDir('certs-other-');
    try {
      const gen = await runCommand(path.join(REPO, 'infra', 'gen-certs.sh'), [other]);
      assert.equal(gen.code, 0, gen.stderr);
      const r = await runCommand('docker', [
        '-H', `tcp://127.0.0.1:${apiPort}`, '--tlsverify', '--tlscacert', path.join(certs, 'ca.pem'), '--tlscert', path.join(other, 'client.pem'), '--tlskey', path.join(other, 'client-key.pem'),
        'version',
      ], { env: { ...process.env, DOCKER_CONFIG: stack.dockerConfig }, timeoutMs: 20_000 });
      assert.notEqual(r.code, 0);
      assert.doesNotMatch(r.stdout, /API version:\s+1\.12 \(minimum/);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  /** `stevedore up` of a stack of its own with `extra`; its result, and a way to take it down. */
  const upWith = async (extra: Record<string, string>, n: number) => {
    const root = shortTempDir('sd-');
    const env = { ...process.env, STEVEDORE_ROOT: root, STEVEDORE_BRIDGE: `sdtl${n}${process.pid % 10000}`, STEVEDORE_BRIDGE_SUBNET: `10.212.${250 + n}.0/24`, ...extra };
    const r = await runCommand(path.join(REPO, 'stevedore'), ['up', '--timeout', '30'], { env, timeoutMs: 60_000 });
    const down = async () => {
      await runCommand(path.join(REPO, 'stevedore'), ['down'], { env });
      spawnSync('iptables', ['-w', '-t', 'nat', '-D', ...bridgeNatRule(env)], { stdio: 'ignore' });
      fs.rmSync(root, { recursive: true, force: true });
    };
    return { r, root, down };
  };

  test('TLS without client certificates is refused at start-up, unless named unsafe: then it serves, warning at start', async () => {
    const port = await freePort();
    const tlsOnly = { STEVEDORE_HOST: `tcp://127.0.0.1:${port}`, STEVEDORE_TLS_CERT: path.join(certs, 'api-edge.pem'), STEVEDORE_TLS_KEY: path.join(certs, 'api-edge-key.pem') };
    const refusedUp = await upWith(tlsOnly, 1);
    try {
      assert.notEqual(refusedUp.r.code, 0);
      assert.match(refusedUp.r.stderr, /Refusing to listen on tcp:\/\/127\.0\.0\.1:\d+ without client certificates/);
    } finally {
      await refusedUp.down();
    }
    const unsafe = await upWith({ ...tlsOnly, STEVEDORE_TLS_UNSAFE_NO_CLIENT_CERTS: '1' }, 2);
    try {
      assert.equal(unsafe.r.code, 0, unsafe.r.stderr);
      const v = await runCommand('docker', ['-H', `tcp://127.0.0.1:${port}`, '--tls', '--tlscacert', path.join(certs, 'ca.pem'), 'version', '--format', '{{.Server.APIVersion}}'], { env: { ...process.env, DOCKER_CONFIG: stack.dockerConfig }, timeoutMs: 20_000 });
      assert.equal(v.stdout.trim(), '1.12', v.stderr);
      assert.match(fs.readFileSync(path.join(unsafe.root, 'logs', 'api-edge.log'), 'utf8'), /UNSAFE: TLS without client certificates/);
    } finally {
      await unsafe.down();
    }
  });

  test('gRPC over TCP without TLS, loopback included: the services refuse to start', async () => {
    const port = await freePort();
    const plain = await upWith({ STEVEDORE_EVENTS_ADDR: `127.0.0.1:${port}` }, 3);
    try {
      assert.notEqual(plain.r.code, 0);
      const logs = fs.readdirSync(path.join(plain.root, 'logs')).map((f) => fs.readFileSync(path.join(plain.root, 'logs', f), 'utf8')).join('\n');
      assert.match(plain.r.stderr + logs, /gRPC address 127\.0\.0\.1:\d+ is TCP: set STEVEDORE_GRPC_TLS_CERT/);
    } finally {
      await plain.down();
    }
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
