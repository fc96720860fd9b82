// A stack's whole life leaves the host as it found it: containers on the
// bridge with published ports, a link under STEVEDORE_ICC=false, data
// volumes and binds, a SIGKILL of container-runtime while they run (and one
// container dying meanwhile), then `stevedore down` with containers still
// running. Interfaces, network namespaces, mounts, iptables rules and /tmp are
// compared with what the host held before the stack started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { freePort, shortTempDir, sleep, startStackWithBusybox, stopStack } from './harness';
import { difference, snapshot } from './host-footprint';
import { busyboxRootfsTar } from './images-fixtures';

test('after a stack whose runtime was SIGKILLed with containers running, the host holds what it held before', async () => {
  busyboxRootfsTar(); // this process's own (removed at its exit)
  const before = snapshot();
  const stack = await startStackWithBusybox({ STEVEDORE_ICC: 'false' });
  const bindDir = shortTempDir('sd-bind-');
  try {
    const port = await freePort();
    const web = await stack.docker(['run', '-d', '--name', 'web', '-p', `${port}:80`, '-v', '/data', 'busybox', 'sh', '-c', 'mkdir /w; echo up > /w/index.html; exec httpd -f -p 80 -h /w']);
    assert.equal(web.code, 0, web.stderr);
    const client = await stack.docker(['run', '-d', '--name', 'client', '--link', 'web:web', '-v', `${bindDir}:/h`, '-P', '--expose', '9000', 'busybox', 'sleep', '300']);
    assert.equal(client.code, 0, client.stderr);
    const dying = await stack.docker(['run', '-d', '--volumes-from', 'web', 'busybox', 'sleep', '300']);
    assert.equal(dying.code, 0, dying.stderr);
    assert.equal((await stack.docker(['run', '-d', '--net=none', 'busybox', 'sleep', '300'])).code, 0);
    const during = difference(before, snapshot());
    assert.ok(during.some((d) => d.startsWith('links left behind: veth')), 'the containers are on the bridge');
    assert.ok(during.some((d) => d.startsWith('rules left behind: -A SD-ICC-')), 'the link opened rules');
    assert.ok(during.some((d) => /mounts left behind: .*rootfs/.test(d)), 'the root filesystems are mounted');

    const pid = JSON.parse((await stack.request('GET', '/v1.12/containers/' + dying.stdout.trim() + '/json')).text).State.Pid;
    process.kill(stack.process('container-runtime').pid!, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    await sleep(1500);
    await stack.waitFor('/containers/json', 200, 20_000);
    const listed = JSON.parse((await stack.request('GET', '/v1.12/containers/json')).text) as unknown[];
    assert.equal(listed.length, 3, 'the three others still run after the restart');
  } finally {
    await stopStack(stack, { allowRestarts: true });
    fs.rmSync(bindDir, { recursive: true, force: true });
  }
  assert.deepEqual(difference(before, snapshot()), []);
});
