// container-runtime killed outright while containers run, and one exits
// while it is gone: on its restart, the running one is still running and
// attachable, the exited one shows its real exit code. An attachment in
// progress outlives the kill: the API edge attaches again and sends the stdin
// the killed runtime had not handed over (a `docker run -i` used to wait
// forever for a container that waited for that stdin).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { demux, sleep, type Stack, startStackWithBusybox, stopStack } from './harness';

/** SIGKILL of the runtime; resolves once a new one answers. */
async function killRuntime(stack: Stack): Promise<void> {
  const before = stack.process('container-runtime');
  process.kill(before.pid!, 'SIGKILL');
  const start = Date.now();
  while (stack.process('container-runtime').pid === before.pid && Date.now() - start < 20_000) await sleep(50);
  await stack.waitFor('/containers/json', 200, 20_000);
}

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

  test('an attach made before the start outlives a SIGKILL of the runtime: the stdin sent before the kill reaches the container', async () => {
    const created = await stack.request('POST', '/v1.12/containers/create', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ Image: 'busybox', Cmd: ['sh', '-c', 'read x; echo "got $x"'], OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true }),
    });
    assert.equal(created.status, 201, created.text);
    const id = JSON.parse(created.text).Id as string;
    const sock = net.connect(stack.socket);
    const received: Buffer[] = [];
    sock.on('data', (c) => received.push(c));
    const closed = new Promise((r) => sock.on('close', r));
    await new Promise((r) => sock.on('connect', r));
    sock.write(`POST /v1.12/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`);
    await sleep(300);
    // The line and the end of input wait in the runtime for the start, and die with it.
    sock.end('line\n');
    await sleep(300);
    await killRuntime(stack);
    assert.equal((await stack.request('POST', `/v1.12/containers/${id}/start`)).status, 204);
    const ended = await Promise.race([closed.then(() => true), sleep(20_000).then(() => false)]);
    sock.destroy();
    assert.ok(ended, 'the attach did not end: the container still waits for its stdin');
    const all = Buffer.concat(received);
    const frames = demux(all.subarray(all.indexOf('\r\n\r\n') + 4));
    assert.deepEqual(frames, [[1, 'got line\n']]);
    assert.equal((await stack.docker(['wait', id])).stdout.trim(), '0');
    assert.equal((await stack.docker(['rm', id])).code, 0);
  });

  test('docker run -i goes on over a SIGKILL of the runtime: input typed after it reaches the container, its output the client', async () => {
    const child = spawn('docker', ['run', '-i', '--rm', '--name', 'typed', 'busybox', 'sh', '-c', 'read x; echo "got $x"'], {
      env: { ...process.env, DOCKER_HOST: stack.dockerHost, DOCKER_CONFIG: stack.dockerConfig },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const start = Date.now();
    while ((await stack.docker(['inspect', '-f', '{{.State.Running}}', 'typed'])).stdout.trim() !== 'true' && Date.now() - start < 20_000) await sleep(100);
    await sleep(300);
    await killRuntime(stack);
    child.stdin.end('line\n');
    const code = await Promise.race([exited, sleep(30_000).then(() => 'hung' as const)]);
    if (code === 'hung') child.kill('SIGKILL');
    assert.equal(code, 0, `docker run -i: ${err}`);
    assert.equal(out, 'got line\n');
    assert.equal((await stack.docker(['ps', '-a', '--filter', 'name=typed', '-q'])).stdout.trim(), '', '--rm removed it');
  });

  test('stevedore down stops running containers and leaves no process behind', async () => {
    const id = (await stack.docker(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    // stopStack (after) checks that nothing mentioning the data root survives down.
  });
});
