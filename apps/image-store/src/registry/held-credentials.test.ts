import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeldCredentials } from './held-credentials';

const auth = (username: string) => ({ username, password: 'p', auth: '', email: '', serverAddress: '', identityToken: '', registryToken: '' });

test("a build's credentials: the entry of the image's registry, else the one for any; gone when released or after a day", () => {
  const held = new HeldCredentials();
  held.hold('b1', { '127.0.0.1:5000': auth('local'), 'https://reg.example/v1/': auth('example'), '': auth('any') }, 0);
  assert.equal(held.forRepository('b1', '127.0.0.1:5000/team/app', 0)?.username, 'local');
  assert.equal(held.forRepository('b1', 'reg.example/app', 0)?.username, 'example');
  assert.equal(held.forRepository('b1', 'team/app', 0)?.username, 'any', 'Docker Hub: the entry for any registry');
  assert.equal(held.forRepository('other', 'team/app', 0), undefined);
  held.release('b1');
  assert.equal(held.forRepository('b1', '127.0.0.1:5000/team/app', 0), undefined);
  held.hold('b2', { '': auth('any') }, 0);
  assert.equal(held.forRepository('b2', 'x/y', 24 * 3600 * 1000 - 1)?.username, 'any');
  assert.equal(held.forRepository('b2', 'x/y', 24 * 3600 * 1000), undefined, 'expired');
});
