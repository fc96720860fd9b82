// container-runtime killed outright while containers run, and one exits
// while it is gone: on its restart, the running one is still running and
// attachable, the exited one shows its real exit code.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, type Stack, startStackWithBusybox, stopStack } from './harness';

describe('container-runtime restarts', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
  });
  after(() => stopStack(stack, { allowRestarts: true }));

  test('SIGKILL of container-runtime: running containers survive and are adopted, exits meanwhile are recorded', async () => {
    const alive = (await stack.docker(['run', '-d', '--name', 'alive', 'busybox', 'sh', '-c', 'while true; do echo alive; sleep 0.2; done'])).stdout.trim();
    const ending = (await stack.docker(['run', '-d', '--name', 'ending', 'busybox', 'sh', '-c', 'sleep 2; exit 7'])).stdout.trim();
    assert.match(alive, /^[0-9a-f]{64}$/);
    const before = stack.process('container-runtime');
    process.kill(before.pid!, 'SIGKILL');
    await sleep(3000); // `ending` exits while nobody is watching
    await stack.waitFor('/containers/json', 200, 20_000);
    assert.notEqual(stack.process('container-runtime').pid, before.pid);

    const ps = await stack.docker(['ps', '--format', '{{.Names}}']);
    assert.equal(ps.stdout.trim(), 'alive');
    assert.equal((await stack.docker(['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', 'ending'])).stdout.trim(), 'false 7');
    assert.equal((await stack.docker(['wait', ending])).stdout.trim(), '7');

    // Still attachable: live output arrives on a new attachment.
    const attached = stack.docker(['attach', '--no-stdin', 'alive'], { timeoutMs: 2500 });
    const out = await attached;
    assert.match(out.stdout, /alive\nalive\n/);

    // And it ends as usual: the exit is seen by the new runtime.
    const since = Math.floor(Date.now() / 1000);
    assert.equal((await stack.docker(['kill', 'alive'])).code, 0);
    assert.equal((await stack.docker(['wait', 'alive'])).stdout.trim(), '137');
    await sleep(1100);
    const events = await stack.request('GET', `/v1.12/events?since=${since}&until=${Math.floor(Date.now() / 1000)}`);
    const die = events.text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.status === 'die' && e.id === alive);
    assert.equal(die?.Actor.Attributes.exitCode, '137');
    assert.equal((await stack.docker(['rm', 'alive', 'ending'])).code, 0);
  });

  test('stevedore down stops running containers and leaves no process behind', async () => {
    const id = (await stack.docker(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    // stopStack (after) checks that nothing mentioning the data root survives down.
  });
});
