// The foundation, end to end: a stack started as the README says, separate
// processes, the real docker CLI, Docker 1.0's routing rules, bad input.
import { after, before, describe, test } from 'node:test';
import * as os from 'node:os';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { pidCommand, startStack, stopStack, type Stack } from './harness';

describe('a stack started by ./stevedore up', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stopStack(stack));

  test('runs Redis and the five services as separate processes', () => {
    const state = stack.state();
    const names = state.processes.map((p) => p.name).sort();
    assert.deepEqual(names, ['api-edge', 'build-worker', 'container-runtime', 'events', 'image-store', 'redis']);
    const pids = new Set(state.processes.map((p) => p.pid));
    assert.equal(pids.size, 6);
    assert.ok(!pids.has(state.supervisorPid));
    for (const p of state.processes) {
      assert.equal(p.state, 'healthy', `${p.name} is ${p.state}`);
      const cmd = pidCommand(p.pid!);
      if (p.name === 'redis') assert.match(cmd, /redis-server/);
      else assert.match(cmd, new RegExp(`apps/${p.name}/dist/main\\.js`));
    }
  });

  test('docker version shows server API version 1.12', async () => {
    const r = await stack.docker(['version', '--format', '{{.Server.APIVersion}} {{.Server.Os}} {{.Client.APIVersion}}']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '1.12 linux 1.12');
    const plain = await stack.docker(['version']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /API version:\s+1\.12 \(minimum version 1\.0\)/);
  });

  test('docker info answers with real counts and host facts', async () => {
    const r = await stack.docker(['info', '--format', '{{.Containers}} {{.Images}} {{.NCPU}} {{.OSType}} {{.DockerRootDir}}']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `0 0 ${os.cpus().length} linux ${stack.root}`);
    const raw = await stack.request('GET', '/v1.12/info');
    const info = JSON.parse(raw.text);
    // JSON booleans (today's CLI cannot decode Docker 1.0's 0/1 here), keys sorted as Docker 1.0 did.
    for (const key of ['Debug', 'IPv4Forwarding', 'MemoryLimit', 'SwapLimit']) assert.equal(typeof info[key], 'boolean', key);
    assert.deepEqual(Object.keys(info), [...Object.keys(info)].sort());
    assert.equal(info.KernelVersion, os.release());
    assert.match(info.ExecutionDriver, /^(runc|crun)-\d/);
  });

  test('the socket is mode 0660', () => {
    const mode = fs.statSync(stack.socket).mode & 0o777;
    assert.equal(mode, 0o660);
  });

  test('versions: none and up to 1.12 served, above refused with Docker 1.0\'s message', async () => {
    for (const p of ['/version', '/v1.0/version', '/v1.12/version', '/v0.5/version', '/v1.12.0/version']) {
      const r = await stack.request('GET', p);
      assert.equal(r.status, 200, p);
      assert.equal(JSON.parse(r.text).ApiVersion, '1.12');
      assert.equal(r.headers['content-type'], 'application/json');
    }
    const refused = await stack.request('GET', '/v1.13/version');
    assert.equal(refused.status, 404);
    assert.equal(refused.text, "client and server don't have same version (client : 1.13, server: 1.12)\n");
    assert.equal((await stack.request('GET', '/v1.120/_ping')).status, 404);
  });

  test('routing: unknown routes 404, OPTIONS 200, unclean paths redirected, ping for old and new clients', async () => {
    const unknown = await stack.request('GET', '/v1.12/nothing/here');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.text, '404 page not found\n');
    assert.equal((await stack.request('GET', '/v1.x/version')).status, 404);
    assert.equal((await stack.request('POST', '/version')).status, 404);
    // The Job-Name header Docker 1.0's /info and /version carried.
    assert.equal((await stack.request('GET', '/v1.12/version')).headers['job-name'], 'version');
    assert.equal((await stack.request('GET', '/v1.0/info')).headers['job-name'], 'info');
    const options = await stack.request('OPTIONS', '/v9.9/anything');
    assert.equal(options.status, 200);
    assert.equal(options.headers['access-control-allow-origin'], undefined, 'no CORS unless asked for');
    const redirect = await stack.request('GET', '//version?x=1');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/version?x=1');
    const ping = await stack.request('GET', '/_ping');
    assert.equal(ping.text, 'OK');
    assert.equal(ping.headers['api-version'], '1.12');
    const head = await stack.request('HEAD', '/_ping');
    assert.equal(head.status, 200);
    assert.equal(head.headers['api-version'], '1.12');
    for (const answer of [ping, head]) {
      assert.deepEqual([answer.headers.ostype, answer.headers['docker-experimental'], answer.headers['content-length'], answer.headers['cache-control']], ['linux', 'false', '2', 'no-cache, no-store, must-revalidate']);
    }
    assert.equal(head.text, '', 'HEAD: no body');
    assert.equal((await stack.request('GET', '/v1.0/_ping')).status, 200);
  });

  test('malformed requests get a 4xx and the daemon keeps answering', async () => {
    const restartsBefore = stack.state().processes.map((p) => p.restarts);
    const badJson = await stack.request('POST', '/v1.12/auth', { headers: { 'Content-Type': 'application/json' }, body: '{"username": ' });
    assert.equal(badJson.status, 400);
    assert.match(badJson.text, /not valid JSON/);
    const empty = await stack.request('POST', '/auth', { headers: { 'Content-Type': 'application/json' } });
    assert.equal(empty.status, 400);
    const badSince = await stack.request('GET', '/v1.12/events?since=yesterday');
    assert.equal(badSince.status, 400);
    assert.match(badSince.text, /since/);
    const badFilters = await stack.request('GET', '/v1.12/events?filters=%7Bnot-json');
    assert.equal(badFilters.status, 400);
    const unknownFilter = await stack.request('GET', '/v1.12/events?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D');
    assert.equal(unknownFilter.status, 400);
    assert.match(unknownFilter.text, /Invalid filter 'colour'/);
    const huge = await stack.raw(`GET /version HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    assert.match(huge, /^HTTP\/1\.1 431 /);
    const garbage = await stack.raw('THIS IS NOT HTTP\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400 /);
    const ping = await stack.request('GET', '/_ping');
    assert.equal(ping.status, 200);
    assert.deepEqual(stack.state().processes.map((p) => p.restarts), restartsBefore);
  });

  test('stevedore status shows every process', async () => {
    const r = await stack.stevedore(['status']);
    assert.equal(r.code, 0);
    for (const name of ['supervisor', 'redis', 'events', 'image-store', 'container-runtime', 'build-worker', 'api-edge']) {
      assert.match(r.stdout, new RegExp(`^${name}\\s+\\d+\\s+(running|healthy)`, 'm'));
    }
  });
});

describe('two stacks side by side', () => {
  test('run on one machine without touching each other, and down stops only its own', async () => {
    const a = await startStack();
    const b = await startStack();
    try {
      const pa = a.state().processes.map((p) => p.pid);
      const pb = b.state().processes.map((p) => p.pid);
      assert.equal(new Set([...pa, ...pb]).size, 12);
      assert.equal((await a.request('GET', '/info')).status, 200);
      assert.equal((await b.request('GET', '/info')).status, 200);
      await a.down();
      for (const pid of pa) assert.throws(() => process.kill(pid!, 0), `pid ${pid} of the stopped stack is still alive`);
      assert.equal((await a.stevedore(['status'])).code, 3);
      await assert.rejects(a.request('GET', '/_ping'));
      assert.equal((await b.request('GET', '/_ping')).status, 200);
      for (const pid of pb) process.kill(pid!, 0);
    } finally {
      await stopStack(a);
      await stopStack(b);
    }
  });
});

describe('wiring', () => {
  test('a request id travels from the API edge to the services, and is in every log line about it', async () => {
    // The services log each call at debug level (the edge's request line is at info).
    const stack = await startStack({ STEVEDORE_LOG_LEVEL: 'debug' });
    try {
      const reqId = `test-${Date.now()}`;
      const r = await stack.request('GET', '/v1.12/info', { headers: { 'X-Request-Id': reqId } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-request-id'], reqId);
      await new Promise((res) => setTimeout(res, 300)); // pino writes asynchronously
      for (const service of ['api-edge', 'image-store', 'container-runtime', 'events']) {
        const lines = fs
          .readFileSync(`${stack.root}/logs/${service}.log`, 'utf8')
          .split('\n')
          .filter((l) => l.includes(reqId))
          .map((l) => JSON.parse(l));
        assert.ok(lines.length >= 1, `${service} logged nothing with the request id`);
        for (const l of lines) assert.equal(l.reqId, reqId);
      }
    } finally {
      await stopStack(stack);
    }
  });

  test('STEVEDORE_API_CORS puts Docker 1.0\'s CORS headers on every answer, OPTIONS included', async () => {
    const stack = await startStack({ STEVEDORE_API_CORS: 'true' });
    try {
      for (const [method, p] of [['OPTIONS', '/v1.12/containers/json'], ['GET', '/v1.12/version'], ['GET', '/v1.12/nothing']] as const) {
        const r = await stack.request(method, p);
        assert.equal(r.headers['access-control-allow-origin'], '*', `${method} ${p}`);
        assert.equal(r.headers['access-control-allow-headers'], 'Origin, X-Requested-With, Content-Type, Accept');
        assert.equal(r.headers['access-control-allow-methods'], 'GET, POST, DELETE, PUT, OPTIONS');
      }
    } finally {
      await stopStack(stack);
    }
  });

  test('the socket belongs to the docker group when it exists', async (t) => {
    const group = fs.readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('docker:'));
    if (!group) {
      // Without the group the socket stays root's; assert that instead.
      const stack = await startStack();
      try {
        assert.equal(fs.statSync(stack.socket).gid, 0);
      } finally {
        await stopStack(stack);
      }
      return;
    }
    const stack = await startStack();
    try {
      assert.equal(fs.statSync(stack.socket).gid, Number(group.split(':')[2]));
    } finally {
      await stopStack(stack);
    }
    t.diagnostic('docker group present');
  });
});
