import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiRequest } from '../http/api-request';
import { buildPlacement, registryConfig, removalRules } from './build.handlers';

/** A request with a version and a query, as removalRules reads it. */
function req(version: string, query: string) {
  const q = new URLSearchParams(query);
  const [major, minor] = version.split('.').map(Number);
  return {
    query: q,
    atLeast: (v: string) => {
      const [a, b] = v.split('.').map(Number);
      return major > a || (major === a && minor >= b);
    },
    bool: (name: string) => ApiRequest.prototype.bool.call({ query: q } as unknown as ApiRequest, name),
  };
}

test('gate G7: the rm and forcerm defaults per version, as BUILDER.md tables them', () => {
  const cases: Array<[string, string, { rm: boolean; forcerm: boolean }]> = [
    ['1.12', '', { rm: true, forcerm: false }],
    ['1.12', 'rm=', { rm: true, forcerm: false }],
    ['1.12', 'rm=0', { rm: false, forcerm: false }],
    ['1.12', 'rm=false', { rm: false, forcerm: false }],
    ['1.12', 'rm=0&forcerm=1', { rm: true, forcerm: true }],
    ['1.12', 'rm=0&forcerm=true', { rm: false, forcerm: true }],
    ['1.11', '', { rm: false, forcerm: false }],
    ['1.11', 'rm=1', { rm: true, forcerm: false }],
    ['1.11', 'forcerm=1', { rm: false, forcerm: true }],
  ];
  for (const [version, query, expected] of cases) assert.deepEqual(removalRules(req(version, query)), expected, `v${version} ?${query}`);
});

test('gate G5: FROM\'s credentials from X-Registry-Config, else X-Registry-Auth before v1.9 only', () => {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64');
  const withHeaders = (version: string, headers: Record<string, string>) => ({ ...req(version, ''), header: (name: string) => headers[name.toLowerCase()] });
  const config = b64({ configs: { 'reg.example:5000': { username: 'from-config', password: 'p' } } });
  const auth = b64({ username: 'from-auth', password: 'q' });
  const users = (r: ReturnType<typeof registryConfig>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.username]));
  assert.deepEqual(users(registryConfig(withHeaders('1.8', { 'x-registry-auth': auth }))), { '': 'from-auth' });
  assert.deepEqual(users(registryConfig(withHeaders('1.9', { 'x-registry-auth': auth }))), {});
  assert.deepEqual(users(registryConfig(withHeaders('1.8', { 'x-registry-config': config, 'x-registry-auth': auth }))), { 'reg.example:5000': 'from-config' }, 'a config with entries wins');
  // Today's CLI sends the bare map, in base64url.
  const bare = Buffer.from(JSON.stringify({ 'reg.example:5000': { username: 'bare' } })).toString('base64url');
  assert.deepEqual(users(registryConfig(withHeaders('1.12', { 'x-registry-config': bare }))), { 'reg.example:5000': 'bare' });
  assert.deepEqual(users(registryConfig(withHeaders('1.12', { 'x-registry-config': 'not base64 json' }))), {}, 'unreadable: no credentials');
});

test("a build's placement: constraint: build arguments as the CLI splits them, platform; bad ones refused", () => {
  const placement = (query: Record<string, string>) => buildPlacement({ string: (name: string) => query[name] ?? '' });
  const args = (o: Record<string, string | null>) => ({ buildargs: JSON.stringify(o) });
  // `--build-arg constraint:storage==ssd` arrives split at its first '='.
  assert.deepEqual(placement(args({ 'constraint:storage': '=ssd', 'constraint:node!': 'node-1', HTTP_PROXY: 'x' })), { constraints: ['storage==ssd', 'node!=node-1'], platform: '' });
  assert.deepEqual(placement({}), { constraints: [], platform: '' });
  assert.deepEqual(placement({ platform: 'linux/amd64' }), { constraints: [], platform: 'linux/amd64' });
  assert.throws(() => placement({ buildargs: '[1]' }), /buildargs is not a JSON object/);
  assert.throws(() => placement({ buildargs: '{' }), /buildargs is not a JSON object/);
  assert.throws(() => placement(args({ 'constraint:node': '~x' })), /invalid filter/);
  assert.throws(() => placement(args({ 'constraint:node': '=/(a+)+/' })), /repeated group/);
  assert.throws(() => placement({ platform: 'linux/amd64/v2/x' }), /invalid platform/);
  assert.throws(() => placement({ platform: '../../etc' }), /invalid platform/);
});
