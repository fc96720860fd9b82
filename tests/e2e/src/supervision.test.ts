// A service killed outright is restarted by the supervisor, and the API
// answers again within seconds; with STEVEDORE_PROCESSES=one every service
// runs inside the supervisor.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { processesMentioning, runCommand, shortTempDir, sleep, startStackWithBusybox, stopStack, type Stack } from './harness';
import { difference, snapshot } from './host-footprint';

describe('supervision', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
  });
  after(() => stopStack(stack, { allowRestarts: true }));

  test('one stack per data root: up on a live root exits 2 naming its PIDs; after a SIGKILL of the supervisor, up stops what it left and starts one stack', async () => {
    const own = await startStackWithBusybox();
    /** The live processes whose environment (or command line) names this stack's root. */
    const ofRoot = () =>
      fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid).filter((e) => {
        try {
          // (redis-server writes its title over its environment: its socket path names the root.)
          return fs.readFileSync(`/proc/${e}/environ`, 'latin1').split('\0').includes(`STEVEDORE_ROOT=${own.root}`) || fs.readFileSync(`/proc/${e}/cmdline`, 'latin1').includes(`${own.root}/run/`);
        } catch {
          return false;
        }
      }).map(Number);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      const again = await own.stevedore(['up']);
      assert.equal(again.code, 2, again.stderr);
      assert.match(again.stderr, /a stack is already running on .* \(PIDs: supervisor \d+, .*api-edge \d+/);
      const first = own.state();
      const children = first.processes.map((p) => p.pid).filter((p): p is number => Boolean(p));
      process.kill(first.supervisorPid, 'SIGKILL');
      await sleep(300);
      assert.ok(children.every(alive), 'the killed supervisor\'s children still run');
      const up = await own.stevedore(['up']);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stderr, /stopping what it left running/);
      for (const pid of children) assert.ok(!alive(pid), `${pid} of the first stack is gone`);
      const second = own.state();
      assert.deepEqual(new Set(ofRoot()), new Set([second.supervisorPid, ...second.processes.map((p) => p.pid)]), 'one stack: only the new supervisor and its processes');
      assert.equal((await own.docker(['ps'])).code, 0);
    } finally {
      await stopStack(own, { allowRestarts: true });
    }
  });

  test('an attach whose service goes away after the takeover ends with Docker 1.0\'s `Error attaching: …` line', async () => {
    const id = (await stack.docker(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
    const sock = net.connect(stack.socket);
    const received: Buffer[] = [];
    sock.on('data', (c) => received.push(c));
    const closed = new Promise((r) => sock.on('close', r));
    await new Promise((r) => sock.on('connect', r));
    sock.write(`POST /v1.5/containers/${id}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    for (let i = 0; i < 50 && !Buffer.concat(received).includes('\r\n\r\n'); i++) await sleep(20);
    process.kill(stack.process('container-runtime').pid!, 'SIGKILL');
    await closed;
    const text = Buffer.concat(received).toString();
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /\r\n\r\nError attaching: [^\n]+\n$/);
    await stack.waitFor('/info', 200, 15_000);
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
  });

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

describe('every service in one process (STEVEDORE_PROCESSES=one)', () => {
  test('the supervisor runs them all: containers, builds and events work, and down leaves nothing', async () => {
    const before = snapshot();
    const stack = await startStackWithBusybox({ STEVEDORE_PROCESSES: 'one' });
    try {
      const state = stack.state();
      const services = state.processes.filter((p) => p.name !== 'redis');
      assert.deepEqual(services.map((p) => p.name).sort(), ['api-edge', 'build-worker', 'container-runtime', 'events', 'image-store']);
      assert.ok(services.every((p) => p.pid === state.supervisorPid && p.state === 'healthy'), JSON.stringify(services));
      const run = await stack.docker(['run', '--rm', '--name', 'solo', 'busybox', 'sh', '-c', 'echo from-one-process']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), 'from-one-process');
      const dir = shortTempDir('one-ctx-');
      fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo built > /built\nCMD ["cat", "/built"]\n');
      const built = await stack.docker(['build', '-t', 'crew/one', dir], { timeoutMs: 60_000 });
      assert.equal(built.code, 0, built.stderr);
      assert.equal((await stack.docker(['run', '--rm', 'crew/one'])).stdout.trim(), 'built');
      const events = await stack.request('GET', `/v1.12/events?since=1&until=${Math.floor(Date.now() / 1000) + 1}`);
      assert.match(events.text, /\{"status":"die","id":"[0-9a-f]{64}","from":"busybox:latest".*"name":"solo","exitCode":"0"/);
      assert.ok(fs.readFileSync(path.join(stack.root, 'logs', 'supervisor.log'), 'utf8').includes('"service":"container-runtime"'), 'the services log with the supervisor');
    } finally {
      await stopStack(stack);
    }
    assert.deepEqual(difference(before, snapshot()).filter((d) => !/^tmp .*(one-ctx-|bbroot-)/.test(d)), []);
  });

  test('it refuses more than one build worker, before starting anything', async () => {
    const root = shortTempDir('sd-');
    const r = await runCommand(path.join(process.env.STEVEDORE_REPO ?? process.cwd(), 'stevedore'), ['up'], {
      env: { ...process.env, STEVEDORE_ROOT: root, STEVEDORE_HOST: `unix://${root}/api.sock`, STEVEDORE_PROCESSES: 'one', STEVEDORE_BUILD_WORKERS: '2' },
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /STEVEDORE_PROCESSES=one runs one build worker/);
    assert.deepEqual(processesMentioning(root), []);
  });
});
