// POST /auth (docker login): checked against the registry named in the body,
// Debian's docker-registry on 127.0.0.1, with and without htpasswd.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, startRegistry, startStack, stopStack, type Stack } from './harness';

describe('POST /auth', () => {
  let stack: Stack;
  let secured: Awaited<ReturnType<typeof startRegistry>>;
  let open: Awaited<ReturnType<typeof startRegistry>>;

  before(async () => {
    [stack, secured, open] = await Promise.all([startStack(), startRegistry({ username: 'alice', password: 's3cret' }), startRegistry()]);
  });
  after(async () => {
    await Promise.all([stopStack(stack), secured?.stop(), open?.stop()]);
  });

  test('docker login with the right password succeeds', async () => {
    const r = await stack.docker(['login', secured.address, '-u', 'alice', '--password-stdin'], { input: 's3cret\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Login Succeeded/);
  });

  test('a wrong password is a 401 with a clear message', async () => {
    const r = await stack.docker(['login', secured.address, '-u', 'alice', '--password-stdin'], { input: 'wrong\n' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Wrong login\/password/);
    const raw = await stack.request('POST', '/v1.12/auth', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'nope', serveraddress: secured.address }),
    });
    assert.equal(raw.status, 401);
  });

  test('a registry without auth accepts the login, answered 200 with a JSON Status', async () => {
    const raw = await stack.request('POST', '/v1.12/auth', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'bob', password: 'x', serveraddress: `http://${open.address}` }),
    });
    assert.equal(raw.status, 200);
    assert.deepEqual(JSON.parse(raw.text), { Status: 'Login Succeeded' });
  });

  test('a registry that cannot be reached gives a clear error, and the daemon keeps answering', async () => {
    const port = await freePort();
    const raw = await stack.request('POST', '/v1.12/auth', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'bob', password: 'x', serveraddress: `127.0.0.1:${port}` }),
    });
    assert.equal(raw.status, 500);
    assert.match(raw.text, new RegExp(`Cannot reach the registry at http://127\\.0\\.0\\.1:${port}/v2/: ECONNREFUSED`));
    assert.equal((await stack.request('GET', '/_ping')).status, 200);
  });
});
