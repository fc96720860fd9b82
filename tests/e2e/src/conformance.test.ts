// The conformance suite: every endpoint of docs/api/ENDPOINTS.md called
// at v1.0, at the versions where it changed, and at v1.12, with the status,
// content type and body kind Docker 1.0's daemon answered. The suite also
// writes the endpoint × version table of docs/conformance.md from the API
// edge's route declarations and its own results; the committed page must
// equal what the run produced (STEVEDORE_UPDATE_DOCS=1 rewrites it), so it
// cannot drift from the code or the tests.
import { after, before, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { busyboxRootfsTar } from './images-fixtures';
import { type RawAnswer, REPO, requestOn, type Stack, startStackWithBusybox, stopStack } from './harness';

type Kind = 'json' | 'json-stream' | 'text' | 'tar' | 'frames' | 'empty' | 'any';

interface Expect {
  status: number;
  kind: Kind;
  /** A further check of the answer at this version. */
  check?: (a: RawAnswer) => void;
}

interface Case {
  method: string;
  /** As the route declares it. */
  route: string;
  /** The request path at a version (the case's own fixtures made first). */
  path: (v: string) => string | Promise<string>;
  body?: (v: string) => string | Buffer;
  headers?: Record<string, string>;
  versions: Record<string, Expect>;
}

function kindOf(a: RawAnswer): Kind {
  if (a.body.length === 0) return 'empty';
  if (a.body.length >= 8 && [0, 1, 2].includes(a.body[0]) && a.body[1] === 0 && a.body[2] === 0 && a.body[3] === 0) return 'frames';
  if (a.body.length >= 512 && a.body.subarray(257, 262).toString() === 'ustar') return 'tar';
  const text = a.body.toString('utf8');
  try {
    JSON.parse(text);
    return 'json';
  } catch {
    try {
      const lines = text.split(/\r?\n/).filter(Boolean);
      for (const l of lines) JSON.parse(l);
      return lines.length ? 'json-stream' : 'text';
    } catch {
      return 'text';
    }
  }
}

let stack: Stack;
const results: Array<{ method: string; route: string; version: string; status: number; ok: boolean }> = [];

before(async () => {
  stack = await startStackWithBusybox();
});
after(() => stopStack(stack));

test('every endpoint at v1.0, where it changed and at v1.12; the endpoint × version table in docs/conformance.md', async () => {
  const docker = (args: string[]) => stack.docker(args).then((r) => r.stdout.trim());
  const json = { 'Content-Type': 'application/json' };
  /** A fresh container (stopped, or running `sleep`) for the endpoints that change it. */
  const fresh = async (running = false) => (running ? docker(['run', '-d', 'busybox', 'sleep', '600']) : docker(['create', 'busybox', 'sh', '-c', 'echo conformance']));
  await docker(['run', '--name', 'conf', 'busybox', 'sh', '-c', 'echo out; echo err >&2; touch /made']);
  const running = await fresh(true);
  const tar = fs.readFileSync(busyboxRootfsTar());
  const contextDir = fs.mkdtempSync('/tmp/confctx-');
  fs.writeFileSync(path.join(contextDir, 'Dockerfile'), 'FROM busybox\nRUN true\n');
  const context = execFileSync('tar', ['-C', contextDir, '-cf', '-', '.']);
  fs.rmSync(contextDir, { recursive: true, force: true });
  const saved = (await requestOn(stack.socket, 'GET', '/v1.12/images/busybox/get')).body;
  /** A running container, paused. */
  const paused = async () => {
    const id = await fresh(true);
    await docker(['pause', id]);
    return id;
  };
  const ok = (status: number, kind: Kind, check?: (a: RawAnswer) => void): Expect => ({ status, kind, check });
  /** Keys in alphabetical order, in this object and every object inside it. */
  const sortedDeeply = (value: unknown, where = '') => {
    if (Array.isArray(value)) value.forEach((v, i) => sortedDeeply(v, `${where}[${i}]`));
    else if (value && typeof value === 'object') {
      const keys = Object.keys(value);
      assert.deepEqual(keys, [...keys].sort(), `keys of ${where || 'the object'} in alphabetical order`);
      for (const k of keys) sortedDeeply((value as Record<string, unknown>)[k], `${where}.${k}`);
    }
  };
  /** Docker 1.0's engine objects: keys in alphabetical order (nested ones too), a newline after the object. */
  const engineObject = (a: RawAnswer) => {
    const text = a.body.toString();
    assert.ok(text.endsWith('}\n'), 'a newline after the object');
    sortedDeeply(JSON.parse(text));
  };
  /** Docker 1.0's engine tables: `[`, objects each followed by a newline, joined by `,`, `]`. */
  const engineTable = (a: RawAnswer) => {
    const text = a.body.toString();
    assert.match(text, /^\[(\{.*\}\n(,\{.*\}\n)*)?\]$/s, 'the engine table framing');
    sortedDeeply(JSON.parse(text));
  };
  const both = (...checks: Array<(a: RawAnswer) => void>) => (a: RawAnswer) => checks.forEach((c) => c(a));
  /** The stored structures Docker 1.0 serialised directly before v1.12: no newline after them. */
  const storedStructure = (key: string) => (a: RawAnswer) => {
    keyed(key)(a);
    assert.ok(a.body.toString().endsWith('}'), 'no newline after a stored structure');
  };
  const keyed = (key: string) => (a: RawAnswer) => assert.ok(key in (JSON.parse(a.body.toString()) as object), `key ${key}`);
  const portsShape = (string: boolean) => (a: RawAnswer) => {
    const list = JSON.parse(a.body.toString()) as Array<{ Ports: unknown }>;
    assert.equal(typeof list.find((c) => c.Ports !== undefined)?.Ports === 'string', string, 'Ports');
  };

  const cases: Case[] = [
    { method: 'GET', route: '/containers/json', path: (v) => `/v${v}/containers/json?all=1`, versions: { '1.0': ok(200, 'json', both(portsShape(true), engineTable)), '1.5': ok(200, 'json', portsShape(false)), '1.12': ok(200, 'json', both(portsShape(false), engineTable)) } },
    { method: 'GET', route: '/containers/ps', path: (v) => `/v${v}/containers/ps?all=1`, versions: { '1.0': ok(200, 'json'), '1.12': ok(200, 'json') } },
    { method: 'POST', route: '/containers/create', path: (v) => `/v${v}/containers/create${v === '1.0' ? '' : `?name=conf-created-${v.replace('.', '-')}`}`, body: () => JSON.stringify({ Image: 'busybox', Cmd: ['true'] }), headers: json, versions: { '1.0': ok(201, 'json', keyed('Id')), '1.6': ok(201, 'json'), '1.12': ok(201, 'json', (a) => {
      engineObject(a);
      assert.equal((JSON.parse(a.body.toString()) as { Warnings: unknown }).Warnings, null, 'no warnings: null');
    }) } },
    { method: 'GET', route: '/containers/{id}/json', path: (v) => `/v${v}/containers/conf/json`, versions: { '1.0': ok(200, 'json', storedStructure('ID')), '1.8': ok(200, 'json', keyed('HostConfig')), '1.12': ok(200, 'json', (a) => {
      keyed('Id')(a);
      engineObject(a);
    }) } },
    { method: 'GET', route: '/containers/{id}/top', path: (v) => `/v${v}/containers/${running}/top`, versions: { '0.9': ok(500, 'text'), '1.3': ok(500, 'text', (a) => assert.equal(a.body.toString(), 'top was improved a lot since 1.3, Please upgrade your docker client.\n')), '1.4': ok(200, 'json', keyed('Titles')), '1.12': ok(200, 'json', keyed('Processes')) } },
    { method: 'GET', route: '/containers/{id}/logs', path: (v) => `/v${v}/containers/conf/logs?stdout=1&stderr=1`, versions: { '1.0': ok(200, 'text', (a) => assert.equal(a.contentType, 'text/plain')), '1.6': ok(200, 'frames'), '1.11': ok(200, 'frames'), '1.12': ok(200, 'frames', (a) => assert.equal(a.contentType, 'application/octet-stream')) } },
    { method: 'GET', route: '/containers/{id}/changes', path: (v) => `/v${v}/containers/conf/changes`, versions: { '1.0': ok(200, 'json'), '1.12': ok(200, 'json', both(engineTable, (a) => assert.ok((JSON.parse(a.body.toString()) as Array<{ Path: string }>).some((c) => c.Path === '/made')))) } },
    { method: 'GET', route: '/containers/{id}/export', path: (v) => `/v${v}/containers/conf/export`, versions: { '1.0': ok(200, 'tar'), '1.12': ok(200, 'tar') } },
    { method: 'POST', route: '/containers/{id}/resize', path: (v) => `/v${v}/containers/${running}/resize?h=40&w=80`, versions: { '1.0': ok(200, 'any'), '1.12': ok(200, 'any') } },
    { method: 'POST', route: '/containers/{id}/start', path: async (v) => `/v${v}/containers/${await fresh()}/start`, versions: { '1.0': ok(204, 'empty'), '1.3': ok(204, 'empty'), '1.12': ok(204, 'empty') } },
    { method: 'POST', route: '/containers/{id}/stop', path: async (v) => `/v${v}/containers/${await fresh(true)}/stop?t=1`, versions: { '1.0': ok(204, 'empty'), '1.12': ok(204, 'empty') } },
    { method: 'POST', route: '/containers/{id}/restart', path: async (v) => `/v${v}/containers/${await fresh(true)}/restart?t=1`, versions: { '1.0': ok(204, 'empty'), '1.12': ok(204, 'empty') } },
    { method: 'POST', route: '/containers/{id}/kill', path: async (v) => `/v${v}/containers/${await fresh(true)}/kill${v === '1.0' ? '' : '?signal=KILL'}`, versions: { '1.0': ok(204, 'empty'), '1.9': ok(204, 'empty'), '1.12': ok(204, 'empty') } },
    { method: 'POST', route: '/containers/{id}/pause', path: async (v) => `/v${v}/containers/${await fresh(true)}/pause`, versions: { '1.0': ok(204, 'empty'), '1.12': ok(204, 'empty') } },
    { method: 'POST', route: '/containers/{id}/unpause', path: async (v) => `/v${v}/containers/${await paused()}/unpause`, versions: { '1.0': ok(204, 'empty'), '1.12': ok(204, 'empty') } },
    { method: 'POST', route: '/containers/{id}/attach', path: (v) => `/v${v}/containers/conf/attach?logs=1&stdout=1&stderr=1`, versions: { '1.0': ok(200, 'text'), '1.6': ok(200, 'frames'), '1.12': ok(200, 'frames') } },
    { method: 'POST', route: '/containers/{id}/wait', path: (v) => `/v${v}/containers/conf/wait`, versions: { '1.0': ok(200, 'json', keyed('StatusCode')), '1.12': ok(200, 'json', keyed('StatusCode')) } },
    { method: 'DELETE', route: '/containers/{name*}', path: async (v) => `/v${v}/containers/${await fresh()}`, versions: { '1.0': ok(204, 'empty'), '1.10': ok(204, 'empty'), '1.12': ok(204, 'empty') } },
    { method: 'POST', route: '/containers/{id}/copy', path: (v) => `/v${v}/containers/conf/copy`, body: () => JSON.stringify({ Resource: '/made' }), headers: json, versions: { '1.0': ok(200, 'tar'), '1.4': ok(200, 'tar'), '1.12': ok(200, 'tar') } },
    { method: 'GET', route: '/images/json', path: (v) => `/v${v}/images/json`, versions: { '1.0': ok(200, 'json', (a) => {
      assert.ok('Repository' in (JSON.parse(a.body.toString()) as object[])[0]);
      assert.match(a.body.toString(), /^\[\{[^\n]*\}\]\n$/, 'below v1.7 one encoded list, a newline at the end');
    }), '1.7': ok(200, 'json', both(engineTable, (a) => assert.ok('RepoTags' in (JSON.parse(a.body.toString()) as object[])[0]))), '1.12': ok(200, 'json', engineTable) } },
    { method: 'GET', route: '/images/viz', path: (v) => `/v${v}/images/viz`, versions: { '0.9': ok(200, 'text'), '1.0': ok(200, 'text'), '1.6': ok(200, 'text'), '1.6.1': ok(404, 'any'), '1.7': ok(404, 'any', (a) => assert.equal(a.body.toString().trim(), 'This is now implemented in the client.')), '1.12': ok(404, 'any') } },
    { method: 'POST', route: '/images/create', path: (v) => `/v${v}/images/create?fromSrc=-&repo=conf-import&tag=v${v}`, body: () => tar, headers: { 'Content-Type': 'application/x-tar' }, versions: { '1.0': ok(200, 'text'), '1.0.1': ok(200, 'json'), '1.1': ok(200, 'json'), '1.12': ok(200, 'json') } },
    { method: 'GET', route: '/images/{name*}/json', path: (v) => `/v${v}/images/busybox/json`, versions: { '1.0': ok(200, 'json', storedStructure('container_config')), '1.12': ok(200, 'json', (a) => {
      keyed('ContainerConfig')(a);
      engineObject(a);
    }) } },
    { method: 'GET', route: '/images/{name*}/history', path: (v) => `/v${v}/images/busybox/history`, versions: { '1.0': ok(200, 'json', engineTable), '1.12': ok(200, 'json', engineTable) } },
    { method: 'POST', route: '/images/{name*}/tag', path: (v) => `/v${v}/images/busybox/tag?repo=conf-tag&tag=v${v}`, versions: { '1.0': ok(201, 'any'), '1.12': ok(201, 'any') } },
    { method: 'DELETE', route: '/images/{name*}', path: (v) => `/v${v}/images/conf-tag:v${v}`, versions: { '1.0': ok(200, 'json', engineTable), '1.12': ok(200, 'json', both(engineTable, (a) => assert.ok('Untagged' in (JSON.parse(a.body.toString()) as object[])[0]))) } },
    { method: 'GET', route: '/images/{name*}/get', path: (v) => `/v${v}/images/busybox/get`, versions: { '1.0': ok(200, 'tar', (a) => assert.equal(a.contentType, '')), '1.0.1': ok(200, 'tar', (a) => assert.equal(a.contentType, 'application/x-tar')), '1.7': ok(200, 'tar', (a) => assert.equal(a.contentType, 'application/x-tar')), '1.12': ok(200, 'tar') } },
    { method: 'POST', route: '/images/load', path: (v) => `/v${v}/images/load`, body: () => saved, versions: { '1.0': ok(200, 'empty'), '1.7': ok(200, 'empty'), '1.12': ok(200, 'empty') } },
    { method: 'POST', route: '/build', path: (v) => `/v${v}/build?nocache=1&rm=1`, body: () => context, versions: { '0.9': ok(500, 'text'), '1.2': ok(500, 'text'), '1.3': ok(200, 'text'), '1.8': ok(200, 'json-stream'), '1.12': ok(200, 'json-stream') } },
    { method: 'GET', route: '/info', path: (v) => `/v${v}/info`, versions: { '1.0': ok(200, 'json', keyed('Containers')), '1.12': ok(200, 'json', keyed('Containers')) } },
    { method: 'GET', route: '/version', path: (v) => `/v${v}/version`, versions: { '1.0': ok(200, 'json', keyed('Version')), '1.12': ok(200, 'json', (a) => {
      keyed('ApiVersion')(a);
      engineObject(a);
    }) } },
    { method: 'GET', route: '/_ping', path: (v) => `/v${v}/_ping`, versions: { '1.0': ok(200, 'text'), '1.11': ok(200, 'text'), '1.12': ok(200, 'text', (a) => assert.equal(a.body.toString(), 'OK')) } },
    { method: 'POST', route: '/commit', path: (v) => `/v${v}/commit?container=conf&repo=conf-commit&tag=v${v}`, versions: { '1.0': ok(201, 'json', keyed('Id')), '1.12': ok(201, 'json', keyed('Id')) } },
    { method: 'GET', route: '/events', path: (v) => `/v${v}/events?since=1&until=${Math.floor(Date.now() / 1000)}`, versions: { '1.0': ok(200, 'any'), '1.3': ok(200, 'any'), '1.11': ok(200, 'json-stream'), '1.12': ok(200, 'json-stream') } },
  ];

  const failures: string[] = [];
  for (const c of cases) {
    for (const [v, expect] of Object.entries(c.versions)) {
      const urlPath = await c.path(v);
      const a = await requestOn(stack.socket, c.method, urlPath, c.body?.(v), c.headers);
      let problem = '';
      if (a.status !== expect.status) problem = `status ${a.status}, expected ${expect.status}: ${a.body.toString().slice(0, 200)}`;
      else if (expect.kind !== 'any' && kindOf(a) !== expect.kind) problem = `body ${kindOf(a)}, expected ${expect.kind}`;
      else {
        try {
          expect.check?.(a);
        } catch (err) {
          problem = (err as Error).message;
        }
      }
      if (problem) failures.push(`${c.method} ${urlPath}: ${problem}`);
      results.push({ method: c.method, route: c.route, version: v, status: a.status, ok: !problem });
    }
  }
  // Docker 1.0's errors, status and message, for every kind of route.
  const errors: Array<[string, string, string | undefined, Record<string, string>, number, RegExp]> = [
    ['POST', '/v1.12/containers/nosuch/wait', undefined, {}, 500, /^wait: no such container: nosuch\n$/],
    ['DELETE', `/v1.12/containers/${running}`, undefined, {}, 406, /^Impossible to remove a running container, please stop it first or use -f\n$/],
    ['POST', `/v1.12/containers/${running}/kill?signal=FOO`, undefined, {}, 500, /^Invalid signal: FOO\n$/],
    ['POST', '/v1.12/containers/conf/copy', '{"Resource":"/made"}', {}, 500, /^Content-Type not supported: /],
    // Docker 1.0's copy: a bare 404 for an unknown container, its own message for a missing path.
    ['POST', '/v1.12/containers/nosuchcontainer/copy', '{"Resource":"/made"}', json, 404, /^$/],
    ['POST', '/v1.4/containers/conf/copy', '{"Resource":"/nowhere"}', json, 500, /^Could not find the file \/nowhere in container conf\n$/],
    ['POST', '/v1.12/containers/create', '{"Image":"busybox"}', json, 500, /^No command specified\n$/],
    ['POST', '/v1.12/containers/create', '{"Image":"nosuchimage","Cmd":["true"]}', json, 404, /^No such image: nosuchimage \(tag: latest\)\n$/],
    ['POST', '/v1.12/containers/create', '{"Image":"nosuchimage:v2","Cmd":["true"]}', json, 404, /^No such image: nosuchimage:v2 \(tag: v2\)\n$/],
    ['POST', '/v1.12/containers/nosuchcontainer/stop?t=soon', undefined, {}, 400, /^Invalid value for t: "soon" is not an integer\n$/],
    ['GET', '/v1.12/images/json?filters=not-json', undefined, {}, 400, /filters/],
    ['POST', '/v1.12/containers/create?name=conf', '{"Image":"busybox","Cmd":["true"]}', json, 409, /^Conflict, The name conf is already assigned to [0-9a-f]{12}\./],
    ['POST', '/v1.12/images/nosuchimage/tag?repo=x', undefined, {}, 404, /^No such image: nosuchimage\n$/],
    ['POST', '/v1.12/images/busybox/tag?repo=', undefined, {}, 500, /^Repository name can't be empty\n$/],
    // Docker 1.0 refused a tag only for a `/` or a `:` in it.
    ['POST', '/v1.12/images/busybox/tag?repo=conf-tag&tag=a%2Fb', undefined, {}, 500, /^Illegal tag name: a\/b\n$/],
    ['POST', '/v1.12/images/busybox/tag?repo=conf-tag&tag=1.0%2Bb1', undefined, {}, 201, /^$/],
    // Docker 1.0 ignored a commit body it could not read.
    ['POST', '/v1.12/commit?container=conf&repo=conf-commit&tag=unreadable-body', 'not json', json, 201, /^\{"Id":"[0-9a-f]{64}"\}\n$/],
    ['POST', '/v1.12/commit?container=nosuchcontainer', undefined, {}, 404, /^No such container: nosuchcontainer\n$/],
    ['POST', '/v1.12/containers/nosuchcontainer/stop', undefined, {}, 404, /^No such container: nosuchcontainer\n$/],
    // Before the connection is taken over: a plain HTTP answer.
    ['POST', '/v1.12/containers/nosuchcontainer/attach?stream=1&stdout=1', undefined, {}, 404, /^No such container: nosuchcontainer\n$/],
    ['GET', '/v1.12/containers/conf/top', undefined, {}, 500, /is not running\n$/],
    ['GET', '/v1.12/images/nosuchimage/json', undefined, {}, 404, /^No such image: nosuchimage\n$/],
  ];
  for (const [method, urlPath, body, headers, status, message] of errors) {
    const a = await requestOn(stack.socket, method, urlPath, body, headers);
    if (a.status !== status || !message.test(a.body.toString())) failures.push(`${method} ${urlPath}: ${a.status} ${JSON.stringify(a.body.toString())}, expected ${status} ${message}`);
  }
  // Starting a running container is a no-op, still 204, in Docker 1.0.
  assert.equal((await requestOn(stack.socket, 'POST', `/v1.12/containers/${running}/start`)).status, 204);
  assert.deepEqual(failures, []);
  // The gates: version prefixes and a version beyond v1.12.
  assert.equal((await requestOn(stack.socket, 'GET', '/v1.13/version')).status, 404);
  assert.equal((await requestOn(stack.socket, 'GET', '/version')).status, 200, 'unversioned is the newest');
  assert.equal((await requestOn(stack.socket, 'OPTIONS', '/v1.12/containers/json')).status, 200);
  const unknown = await requestOn(stack.socket, 'GET', '/v1.12/no/such/route');
  assert.deepEqual([unknown.status, unknown.body.toString()], [404, '404 page not found\n']);
  for (const gone of [['POST', '/v1.11/images/busybox/insert'], ['POST', '/v1.5/images/getCache'], ['GET', '/v1.1/auth']]) assert.equal((await requestOn(stack.socket, gone[0], gone[1])).status, 404, gone.join(' '));

  // The table, from the route declarations and these results.
  const table = await conformanceTable();
  const file = path.join(REPO, 'docs', 'conformance.md');
  if (process.env.STEVEDORE_UPDATE_DOCS === '1') fs.writeFileSync(file, table);
  assert.equal(fs.readFileSync(file, 'utf8'), table, 'docs/conformance.md is not what the routes and this run give: run with STEVEDORE_UPDATE_DOCS=1');
});

/** The version just before `v` (v1.7 → 1.6). */

/** docs/conformance.md: every declared route, the versions it is served at, and what this suite checked at which version. */
async function conformanceTable(): Promise<string> {
  const edge = path.join(REPO, 'apps', 'api-edge', 'dist');
  const noHandlers = new Proxy({}, { get: () => () => undefined });
  const tables = [
    ['system', 'SystemRoutes'],
    ['events', 'EventsRoutes'],
    ['images', 'ImagesRoutes'],
    ['containers', 'ContainersRoutes'],
    ['exec', 'ExecRoutes'],
    ['build', 'BuildRoutes'],
  ].map(([dir, name]) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the edge's compiled route modules, by a path computed at run time
    const Ctor = (require(path.join(edge, dir, `${dir}.routes.js`)) as Record<string, new (h: unknown) => { routes(): Array<{ method: string; path: string; since: string; addedFor?: string; gate?: { below?: string; above?: string; status: number }; shapes?: string }> }>)[name];
    return new Ctor(noHandlers).routes();
  });
  const lines = [
    '# Conformance: every route × API version',
    '',
    'Generated by `tests/e2e/src/conformance.test.ts` from the API edge\'s route',
    'declarations and the suite\'s own results; the test fails when this page',
    'differs from what a run gives (`STEVEDORE_UPDATE_DOCS=1 ./stevedore test`',
    'rewrites it). "Served" is every version from v1.0 to v1.12 (Docker 1.0',
    'served every route to every version) except where a gate refuses it;',
    '"shape by version" is the version rule (VERSIONS.md §3) the route\'s',
    'handler applies, as the route declares it; "checked" lists the versions',
    'the suite called, with the status it got (each rule is also checked on',
    'both sides of its change, here or in its own e2e test). Every route also',
    'answers 404 above v1.12 (G15). Routes added for today\'s clients say so.',
    '',
    '| route | docs since | served | shape by version | checked (version: status) | note |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of tables.flat()) {
    const checked = results.filter((x) => x.method === r.method && x.route === r.path);
    const served = !r.gate ? 'v1.0–v1.12' : r.gate.below ? `v${r.gate.below}–v1.12 (below: ${r.gate.status})` : `v1.0–v${r.gate.above} (above v${r.gate.above}: ${r.gate.status})`;
    const cells = checked.length ? checked.map((x) => `v${x.version}: ${x.status}${x.ok ? '' : ' ✗'}`).join(', ') : 'in its own e2e test';
    lines.push(`| \`${r.method} ${r.path}\` | v${r.since} | ${served} | ${r.shapes ?? 'the same at every version'} | ${cells} | ${r.addedFor ?? ''} |`);
  }
  lines.push('', 'Not served, as the Docker 1.0 daemon did not serve them: `POST /images/(name)/insert`, `POST /images/getCache`, `GET /auth` (404, checked); `/v1.13/` and later (404, checked).', '');
  return lines.join('\n');
}
