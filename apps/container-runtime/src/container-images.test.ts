// A node's overlay from the layers the image store names: each digest at its
// topmost place only (overlayfs refuses a directory twice).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topmostOfEach } from './container-images';

test('a digest that comes again lower in the chain is left out there; the order is kept', () => {
  const ref = (digest: string, imageId: string) => ({ digest, imageId, size: 1024 });
  const empty = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';
  const chain = [ref(empty, 'cmd'), ref('sha256:b', 'run'), ref(empty, 'env'), ref('sha256:a', 'base'), ref(empty, 'maintainer')];
  assert.deepEqual(topmostOfEach(chain).map((r) => r.imageId), ['cmd', 'run', 'base']);
  assert.deepEqual(topmostOfEach([]), []);
});
