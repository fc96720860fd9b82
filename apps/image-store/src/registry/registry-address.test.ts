import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRegistryAddress } from './registry-address';
import { parseChallenge } from './session';

test('loopback registries are spoken to over HTTP, others over HTTPS', () => {
  assert.equal(parseRegistryAddress('127.0.0.1:5000').v2, 'http://127.0.0.1:5000/v2/');
  assert.equal(parseRegistryAddress('localhost:5000').scheme, 'http');
  assert.equal(parseRegistryAddress('registry.example.com').v2, 'https://registry.example.com/v2/');
  assert.equal(parseRegistryAddress('registry.example.com:5000', ['registry.example.com:5000']).scheme, 'http');
  assert.equal(parseRegistryAddress('https://127.0.0.1:5000/v1/').v2, 'https://127.0.0.1:5000/v2/');
});

test('an empty address or the old index means Docker Hub', () => {
  assert.equal(parseRegistryAddress('').host, 'registry-1.docker.io');
  assert.equal(parseRegistryAddress('https://index.docker.io/v1/').host, 'registry-1.docker.io');
});

test('a bearer challenge gives its realm and service', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="reg"'), {
    scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'reg' },
  });
});
