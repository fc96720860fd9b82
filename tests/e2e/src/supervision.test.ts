// A service killed outright is restarted by the supervisor, and the API
// answers again within seconds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, stopStack, type Stack } from './harness';

describe('supervision', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stopStack(stack, { allowRestarts: true }));

  for (const name of ['events', 'image-store', 'container-runtime', 'api-edge']) {
    test(`SIGKILL of ${name}: restarted, and GET /info answers again within seconds`, async () => {
      const before = stack.process(name);
      process.kill(before.pid!, 'SIGKILL');
      const took = await stack.waitFor('/info', 200, 15_000);
      assert.ok(took < 10_000, `took ${took} ms`);
      const after = stack.process(name);
      assert.notEqual(after.pid, before.pid);
      assert.equal(after.restarts, before.restarts + 1);
      assert.throws(() => process.kill(before.pid!, 0));
      const v = await stack.docker(['version', '--format', '{{.Server.APIVersion}}']);
      assert.equal(v.stdout.trim(), '1.12');
    });
  }
});
