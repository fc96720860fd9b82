// A service killed outright is restarted by the supervisor, and the API
// answers again within seconds; with STEVEDORE_PROCESSES=one every service
// runs inside the supervisor. The API's socket is the supervisor's, so a
// client is never refused while the API edge restarts; a service that is
// alive but hangs is killed and restarted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { processesMentioning, runCommand, shortTempDir, sleep, startStack, startStackWithBusybox, stopStack, type Stack } from './harness';
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

  test('an attach goes on over a SIGKILL of the runtime: output written after its restart reaches the client; removing the container ends it', async () => {
    const id = (await stack.docker(['run', '-d', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'])).stdout.trim();
    const sock = net.connect(stack.socket);
    const received: Buffer[] = [];
    sock.on('data', (c) => received.push(c));
    const closed = new Promise((r) => sock.on('close', r));
    await new Promise((r) => sock.on('connect', r));
    sock.write(`POST /v1.5/containers/${id}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    for (let i = 0; i < 50 && !Buffer.concat(received).includes('tick'); i++) await sleep(100);
    const runtime = stack.process('container-runtime').pid!;
    process.kill(runtime, 'SIGKILL');
    const killedAt = Buffer.concat(received).length;
    await stack.waitFor('/info', 200, 15_000);
    assert.notEqual(stack.process('container-runtime').pid, runtime);
    // Ticks keep coming on the same connection once the new runtime has it.
    for (let i = 0; i < 100 && (Buffer.concat(received).subarray(killedAt).toString().match(/tick \d+\n/g) ?? []).length < 3; i++) await sleep(100);
    const text = Buffer.concat(received).toString();
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok((text.slice(killedAt).match(/tick \d+\n/g) ?? []).length >= 3, `no output after the restart: ${JSON.stringify(text.slice(-200))}`);
    assert.doesNotMatch(text, /Error attaching/);
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
    await closed;
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

/** How a request that did not get its answer failed: refused (no socket, nobody holding it) or cut in flight. */
type Outcome = 'ok' | 'refused' | 'in flight';

/** One GET /_ping on a fresh connection; "refused" when the connection itself failed. */
function pingOnce(socket: string): Promise<{ outcome: Outcome; detail?: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    let connected = false;
    const req = http.request({ socketPath: socket, path: '/_ping', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ...(res.statusCode === 200 ? { outcome: 'ok' } : { outcome: 'in flight', detail: `status ${res.statusCode}` }), ms: Date.now() - started }));
      res.on('error', (err) => resolve({ outcome: 'in flight', detail: String(err), ms: Date.now() - started }));
    });
    req.on('socket', (s) => s.once('connect', () => (connected = true)));
    // Connections wait in the backlog while no edge runs: a generous bound, never reached when it works.
    req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const refused = !connected || err.code === 'ECONNREFUSED' || err.code === 'ENOENT';
      resolve({ outcome: refused ? 'refused' : 'in flight', detail: `${err.code ?? ''} ${err.message}`, ms: Date.now() - started });
    });
    req.end();
  });
}

/** The docker CLI's words for a daemon it could not reach at all (as opposed to one that dropped a request). */
const CANNOT_CONNECT = /Cannot connect to the Docker daemon|connection refused|no such file or directory/;

describe('the API socket outlives the API edge', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
  });
  after(() => stopStack(stack, { allowRestarts: true }));

  test('kill -9 of the API edge five times under a client loop: no connection refused, only requests in flight fail', async () => {
    const tally = { ping: { ok: 0, refused: 0, 'in flight': 0 }, docker: { ok: 0, refused: 0, 'in flight': 0 } };
    const failures: string[] = [];
    /** The longest a ping that got its answer waited (in the backlog, while no edge ran). */
    let longestPingMs = 0;
    let running = true;
    const pingLoop = async () => {
      while (running) {
        const r = await pingOnce(stack.socket);
        tally.ping[r.outcome]++;
        if (r.outcome === 'ok') longestPingMs = Math.max(longestPingMs, r.ms);
        if (r.outcome !== 'ok') failures.push(`ping ${r.outcome}: ${r.detail}`);
      }
    };
    const dockerLoop = async (args: string[]) => {
      while (running) {
        const r = await stack.docker(args, { timeoutMs: 60_000 });
        const outcome: Outcome = r.code === 0 ? 'ok' : CANNOT_CONNECT.test(r.stderr) ? 'refused' : 'in flight';
        tally.docker[outcome]++;
        if (outcome !== 'ok') failures.push(`docker ${args[0]} ${outcome}: ${r.stderr.trim()}`);
      }
    };
    const loops = [pingLoop(), pingLoop(), dockerLoop(['ps']), dockerLoop(['run', '--rm', 'busybox', 'true'])];
    const killed: number[] = [];
    try {
      await sleep(500);
      for (let i = 0; i < 5; i++) {
        // Every other kill lands while the new edge is still starting (before it listens), the others once it serves.
        const deadline = Date.now() + 30_000;
        let edge = stack.process('api-edge');
        while (!edge.pid || killed.includes(edge.pid) || (i % 2 === 0 && edge.state !== 'healthy')) {
          assert.ok(Date.now() < deadline, `no new API edge after kill ${i}: ${JSON.stringify(edge)}`);
          await sleep(20);
          edge = stack.process('api-edge');
        }
        if (i % 2 === 0) await sleep(300 + 200 * i);
        process.kill(edge.pid, 'SIGKILL');
        killed.push(edge.pid);
      }
      await stack.waitFor('/_ping', 200, 30_000);
      await sleep(1000);
    } finally {
      running = false;
      await Promise.all(loops);
    }
    const edge = stack.process('api-edge');
    const seen = `${JSON.stringify(tally)}\n${failures.slice(0, 20).join('\n')}`;
    process.stderr.write(`api-edge killed ${killed.length}x; longest answered ping ${longestPingMs} ms; ${seen}\n`);
    assert.equal(edge.restarts, 5);
    assert.ok(!killed.includes(edge.pid!));
    assert.equal(tally.ping.refused, 0, seen);
    assert.equal(tally.docker.refused, 0, seen);
    assert.ok(tally.ping.ok > 100 && tally.docker.ok > 5, seen);
    // Only what the dead edge was serving may fail: at most the loops' one request each, per kill.
    assert.ok(tally.ping['in flight'] <= 2 * killed.length, seen);
    assert.ok(tally.docker['in flight'] <= 2 * killed.length, seen);
    // Containers of a `run --rm` cut short stay behind: the stack removes them as asked.
    const left = (await stack.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
    if (left.length) assert.equal((await stack.docker(['rm', '-f', ...left])).code, 0);
  });

  test('down removes the API socket, also after a SIGKILL of the supervisor; a stale file where it goes is replaced at up', async () => {
    const own = await startStack();
    try {
      assert.ok(fs.statSync(own.socket).isSocket());
      // Made by the supervisor now, as the edge made it: 0660, the group docker when the host has one.
      const mode = fs.statSync(own.socket).mode & 0o777;
      assert.equal(mode, 0o660, mode.toString(8));
      const docker = fs.readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('docker:'));
      assert.equal(fs.statSync(own.socket).gid, docker ? Number(docker.split(':')[2]) : 0);
      await own.down();
      assert.ok(!fs.existsSync(own.socket), 'down removes the socket file');
      // A stale file where the socket goes (as a killed stack leaves it) does not stop the next up.
      fs.writeFileSync(own.socket, '');
      assert.equal((await own.stevedore(['up'])).code, 0);
      assert.ok(fs.statSync(own.socket).isSocket());
      assert.equal((await own.request('GET', '/_ping')).status, 200);
      // A supervisor killed outright cannot remove it: `down`, stopping what it left, does.
      process.kill(own.state().supervisorPid, 'SIGKILL');
      await sleep(200);
      assert.equal((await own.request('GET', '/_ping')).status, 200, 'its API edge still serves the socket');
      await own.down();
      assert.ok(!fs.existsSync(own.socket), 'down after a killed supervisor removes the socket file');
    } finally {
      await stopStack(own);
    }
    assert.ok(!fs.existsSync(own.socket));
  });
});

describe('health restarts (STEVEDORE_HEALTH_RESTART_AFTER)', () => {
  const restartAfterMs = 3000;
  let stack: Stack;
  before(async () => {
    stack = await startStack({ STEVEDORE_HEALTH_RESTART_AFTER: String(restartAfterMs) });
  });
  after(() => stopStack(stack, { allowRestarts: true }));

  for (const name of ['image-store', 'events']) {
    test(`SIGSTOP of ${name}: alive but unhealthy, it is killed and restarted, and the stack answers again`, async () => {
      const stopped = stack.process(name);
      assert.equal(stopped.state, 'healthy');
      const started = Date.now();
      process.kill(stopped.pid!, 'SIGSTOP');
      try {
        let now = stack.process(name);
        // Noticed at the next probe (every 5 s once the stack is healthy), killed after the setting, SIGKILL after the grace.
        const bound = restartAfterMs + 5000 + 1000 + 5000 + 3000;
        while (!now.pid || now.pid === stopped.pid) {
          assert.ok(Date.now() - started < bound, `${name} still ${JSON.stringify(now)} after ${Date.now() - started} ms`);
          await sleep(50);
          now = stack.process(name);
        }
        const took = Date.now() - started;
        process.stderr.write(`${name} SIGSTOPped: a new process ${took} ms later\n`);
        assert.ok(took >= restartAfterMs, `restarted after ${took} ms, before the setting`);
        assert.equal(now.restarts, stopped.restarts + 1);
        // The stopped process is gone, not left behind stopped.
        assert.throws(() => process.kill(stopped.pid!, 0));
        const log = fs.readFileSync(path.join(stack.root, 'logs', 'supervisor.log'), 'utf8');
        assert.match(log, new RegExp(`"process":"${name}".*failed its health check`));
        if (name === 'image-store') {
          await stack.waitFor('/images/json', 200, 15_000);
          assert.equal((await stack.docker(['images'])).code, 0);
        } else {
          const until = Math.floor(Date.now() / 1000) + 1;
          const events = await stack.request('GET', `/v1.12/events?since=1&until=${until}`);
          assert.equal(events.status, 200);
        }
        const deadline = Date.now() + 15_000;
        while (stack.process(name).state !== 'healthy') {
          assert.ok(Date.now() < deadline, JSON.stringify(stack.process(name)));
          await sleep(100);
        }
      } finally {
        try {
          process.kill(stopped.pid!, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
      }
    });
  }
});
