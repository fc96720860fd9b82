import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configToEnv, loadConfig } from './index';

test('a TCP Redis needs a password, and TLS off this host', () => {
  const redisUrl = (url: string) => loadConfig({ REDIS_URL: url }).redisUrl;
  assert.equal(redisUrl('unix:///run/r.sock'), 'unix:///run/r.sock');
  assert.equal(redisUrl('redis://:pw@127.0.0.1:6379'), 'redis://:pw@127.0.0.1:6379');
  assert.equal(redisUrl('redis://default:pw@[::1]:6379/2'), 'redis://default:pw@[::1]:6379/2');
  assert.equal(redisUrl('rediss://:pw@redis.internal:6380'), 'rediss://:pw@redis.internal:6380');
  assert.throws(() => redisUrl('redis://127.0.0.1:6379'), /without a password/);
  assert.throws(() => redisUrl('rediss://user@redis.internal:6380'), /without a password/);
  assert.throws(() => redisUrl('redis://:pw@10.1.2.3:6379'), /off this host, without TLS: use rediss/);
  assert.throws(() => redisUrl('http://:pw@127.0.0.1'), /must be unix/);
  assert.throws(() => redisUrl('127.0.0.1:6379'), /must be unix/);
  assert.throws(() => redisUrl('REDISS://:pw@redis.internal:6380'), /in lower case/, 'the client would not use TLS for it');
  assert.match(loadConfig({ STEVEDORE_ROOT: '/srv/sd' }).redisUrl, /^unix:\/\/\/srv\/sd\/run\/redis\.sock$/);
});

test('every setting a service reads is validated here and survives the trip to a child process', () => {
  const env = {
    STEVEDORE_LOG_MAX_SIZE: '2048',
    STEVEDORE_LOG_MAX_FILES: '3',
    STEVEDORE_BUILD_CONCURRENCY: '4',
    STEVEDORE_BUILD_CONTEXT_MAX: '1000000',
    STEVEDORE_SECCOMP_PROFILE: '/etc/sd/seccomp.json',
    STEVEDORE_APPARMOR_TEMPLATE: '/etc/sd/template.go',
    STEVEDORE_INSECURE_REGISTRIES: 'reg.local:5000, other:80',
    STEVEDORE_GIT_COMMIT: 'abc1234',
    STEVEDORE_NODE_ARGS: '--cpu-prof  --cpu-prof-dir=/x',
  };
  const config = loadConfig(env);
  assert.deepEqual(config.containerLogs, { maxSizeBytes: 2048, maxFiles: 3 });
  assert.deepEqual(config.build, { concurrency: 4, contextMaxBytes: 1_000_000 });
  assert.deepEqual(config.insecureRegistries, ['reg.local:5000', 'other:80']);
  assert.deepEqual(config.nodeArgs, ['--cpu-prof', '--cpu-prof-dir=/x']);
  const again = loadConfig(configToEnv(config));
  for (const key of ['containerLogs', 'build', 'seccompProfile', 'appArmorTemplate', 'insecureRegistries', 'gitCommit', 'nodeArgs'] as const) {
    assert.deepEqual(again[key], config[key], key);
  }
  for (const name of ['STEVEDORE_LOG_MAX_SIZE', 'STEVEDORE_LOG_MAX_FILES', 'STEVEDORE_BUILD_CONCURRENCY', 'STEVEDORE_BUILD_CONTEXT_MAX']) {
    assert.throws(() => loadConfig({ [name]: '0' }), new RegExp(`${name} must be a positive integer`));
    assert.throws(() => loadConfig({ [name]: 'ten' }), new RegExp(name));
  }
});

test('a cluster role: the services it runs, the node it joins as, the TLS listener of its Redis; validated and carried to a child', () => {
  const env = {
    STEVEDORE_SERVICES: 'build-worker, container-runtime,image-store',
    STEVEDORE_NODE_NAME: 'node-2',
    STEVEDORE_NODE_ADDR: '10.213.7.12',
    STEVEDORE_NODE_LABELS: 'storage=ssd,region=r1',
    STEVEDORE_REDIS_TLS_LISTEN: '10.213.7.1:6379',
    STEVEDORE_REDIS_PASSWORD: 'x'.repeat(32),
    STEVEDORE_REDIS_TLS_CERT: '/c/redis.pem',
    STEVEDORE_REDIS_TLS_KEY: '/c/redis-key.pem',
    STEVEDORE_LAYER_BLOBS_ADDR: '10.213.7.1:7005',
    STEVEDORE_PLACEMENT: 'binpack',
    STEVEDORE_CONTAINER_RUNTIME_METRICS_ADDR: '10.213.7.12:9103',
  };
  const config = loadConfig(env);
  assert.deepEqual(config.services, ['image-store', 'container-runtime', 'build-worker'], 'in the order they start');
  assert.deepEqual(config.node, { name: 'node-2', address: '10.213.7.12', labels: { storage: 'ssd', region: 'r1' } });
  const again = loadConfig(configToEnv(config));
  for (const key of ['services', 'node', 'redisTls', 'layerBlobsAddress', 'placement'] as const) assert.deepEqual(again[key], config[key], key);
  assert.deepEqual(loadConfig({}).services, ['events', 'image-store', 'container-runtime', 'build-worker', 'api-edge']);
  assert.equal(loadConfig({}).node, undefined);
  assert.throws(() => loadConfig({ STEVEDORE_SERVICES: 'redis,events' }), /"redis", which is not one of/);
  assert.throws(() => loadConfig({ STEVEDORE_NODE_NAME: '../n' }), /STEVEDORE_NODE_NAME must be/);
  assert.throws(() => loadConfig({ STEVEDORE_NODE_NAME: 'n1' }), /STEVEDORE_NODE_ADDR must be/);
  assert.throws(() => loadConfig({ ...env, STEVEDORE_NODE_LABELS: 'ssd' }), /key=value/);
  assert.throws(() => loadConfig({ ...env, STEVEDORE_REDIS_PASSWORD: 'short' }), /at least 16/);
  assert.throws(() => loadConfig({ STEVEDORE_LAYER_BLOBS_ADDR: 'store:7005' }), /STEVEDORE_LAYER_BLOBS_ADDR must be IPv4:port/);
  assert.equal(loadConfig({}).placement, 'spread');
  assert.equal(again.metricsAddress('container-runtime'), '10.213.7.12:9103');
  assert.equal(again.metricsAddress('api-edge'), undefined, 'none unless set');
  assert.throws(() => loadConfig({ STEVEDORE_API_EDGE_METRICS_ADDR: ':9100' }), /STEVEDORE_API_EDGE_METRICS_ADDR must be IPv4:port/);
  assert.throws(() => loadConfig({ STEVEDORE_PLACEMENT: 'random' }), /spread or binpack/);
});
