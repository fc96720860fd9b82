// The differential test: one sequence of v1.12 requests sent to Stevedore and
// to the Docker engine 20.10 (Debian's docker.io, on its own socket, data
// root and exec root), their answers compared by shape — status codes, the
// headers that matter, JSON keys and value types, stream framing — values
// such as IDs and times aside. Every difference found is either fixed or
// listed in ./differential-allowed.ts with its reason (docs/deviations.md
// has the page); an unlisted one fails the test, and so does a listed one
// that no longer occurs (the list cannot go stale).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { busyboxRootfsTar } from './images-fixtures';
import { type RawAnswer, requestOn, type Stack, startReferenceDocker, startStack, stopStack } from './harness';
import { ALLOWED } from './differential-allowed';
import { compareShapes, shapeOf, type Shape } from './shape';

/** What is compared of an answer: its status, its content type and its body's shape (JSON, a JSON stream, multiplexed frames, a tar or text). */
function describeAnswer(a: RawAnswer): { status: number; contentType: string; body: Shape } {
  const text = a.body.toString('utf8');
  let body: Shape;
  if (a.contentType === 'application/json') {
    try {
      body = shapeOf(JSON.parse(text));
    } catch {
      // A stream of JSON objects: the shapes of its objects merged.
      const objects = text.split(/\r?\n/).filter(Boolean).map((l) => JSON.parse(l) as unknown);
      body = { stream: shapeOf(objects) };
    }
  } else if (a.body.length >= 8 && [0, 1, 2].includes(a.body[0]) && a.body.readUInt32BE(4) + 8 <= a.body.length && a.body[1] === 0) body = 'multiplexed frames';
  else if (a.body.length >= 512 && a.body.subarray(257, 262).toString() === 'ustar') body = 'tar';
  else body = text ? 'text' : 'empty';
  return { status: a.status, contentType: a.contentType, body };
}

let stack: Stack;
let reference: Awaited<ReturnType<typeof startReferenceDocker>>;

before(async () => {
  [stack, reference] = await Promise.all([startStack(), startReferenceDocker()]);
});
after(async () => {
  await Promise.all([stopStack(stack), reference?.stop()]);
});

test('the same v1.12 requests to Stevedore and to the Docker engine 20.10 get answers of the same shape, except the listed deliberate differences', async () => {
  const engines = { stevedore: stack.socket, reference: reference.host.slice('unix://'.length) };
  const found: string[] = [];
  const ids: Record<string, Record<string, string>> = { stevedore: {}, reference: {} };
  const tar = fs.readFileSync(busyboxRootfsTar());

  /** One step of the sequence: the request (its path may use the engine's own IDs) to both engines, the answers compared. */
  async function step(name: string, method: string, urlPath: (e: keyof typeof engines) => string, body?: Buffer | string, headers?: Record<string, string>): Promise<Record<string, RawAnswer>> {
    const answers: Record<string, RawAnswer> = {};
    for (const e of ['stevedore', 'reference'] as const) answers[e] = await requestOn(engines[e], method, urlPath(e), body, headers);
    const [r, s] = [describeAnswer(answers.reference), describeAnswer(answers.stevedore)];
    if (r.status !== s.status) found.push(`${name}: status ${s.status} (reference ${r.status})`);
    if (r.contentType !== s.contentType) found.push(`${name}: content type ${JSON.stringify(s.contentType)} (reference ${JSON.stringify(r.contentType)})`);
    if (typeof r.body === 'string' || typeof s.body === 'string') {
      if (JSON.stringify(r.body) !== JSON.stringify(s.body) && !(typeof r.body === 'string' && typeof s.body === 'string' && r.body === s.body)) {
        if (typeof r.body === 'string' && typeof s.body === 'string') found.push(`${name}: body ${s.body} (reference ${r.body})`);
        else found.push(`${name}: body ${typeof s.body === 'string' ? s.body : 'json'} (reference ${typeof r.body === 'string' ? r.body : 'json'})`);
      }
    } else {
      for (const d of compareShapes(r.body, s.body)) found.push(`${name}: ${d.path} ${d.kind}${d.kind === 'type' ? ` ${d.stevedore} (reference ${d.reference})` : ''}`);
    }
    return answers;
  }

  const json = { 'Content-Type': 'application/json' };
  await step('GET /_ping', 'GET', () => '/_ping');
  await step('GET /version', 'GET', () => '/v1.12/version');
  await step('GET /info', 'GET', () => '/v1.12/info');
  await step('POST /images/create?fromSrc=-', 'POST', () => '/v1.12/images/create?fromSrc=-&repo=diffbox&tag=latest', tar, { 'Content-Type': 'application/x-tar' });
  await step('GET /images/json', 'GET', () => '/v1.12/images/json');
  await step('GET /images/(name)/json', 'GET', () => '/v1.12/images/diffbox/json');
  await step('GET /images/(name)/history', 'GET', () => '/v1.12/images/diffbox/history');
  await step('POST /images/(name)/tag', 'POST', () => '/v1.12/images/diffbox/tag?repo=diffbox&tag=second');
  await step('GET /images/(name)/json of a missing image', 'GET', () => '/v1.12/images/nosuchimage/json');
  const created = await step('POST /containers/create', 'POST', () => '/v1.12/containers/create?name=diffc', JSON.stringify({ Image: 'diffbox', Cmd: ['sh', '-c', 'echo out; echo err >&2'], HostConfig: { NetworkMode: 'none' } }), json);
  for (const e of ['stevedore', 'reference'] as const) ids[e].c = JSON.parse(created[e].body.toString()).Id;
  await step('POST /containers/create of a missing image', 'POST', () => '/v1.12/containers/create', JSON.stringify({ Image: 'nosuchimage' }), json);
  await step('POST /containers/create with a taken name', 'POST', () => '/v1.12/containers/create?name=diffc', JSON.stringify({ Image: 'diffbox' }), json);
  await step('GET /containers/json?all=1', 'GET', () => '/v1.12/containers/json?all=1');
  await step('POST /containers/(id)/start', 'POST', (e) => `/v1.12/containers/${ids[e].c}/start`, '{}', json);
  await step('POST /containers/(id)/wait', 'POST', (e) => `/v1.12/containers/${ids[e].c}/wait`);
  await step('GET /containers/(id)/json', 'GET', (e) => `/v1.12/containers/${ids[e].c}/json`);
  await step('GET /containers/(id)/logs', 'GET', (e) => `/v1.12/containers/${ids[e].c}/logs?stdout=1&stderr=1`);
  await step('GET /containers/(id)/changes', 'GET', (e) => `/v1.12/containers/${ids[e].c}/changes`);
  await step('GET /containers/(id)/export', 'GET', (e) => `/v1.12/containers/${ids[e].c}/export`);
  await step('POST /containers/(id)/copy', 'POST', (e) => `/v1.12/containers/${ids[e].c}/copy`, JSON.stringify({ Resource: '/bin/sh' }), json);
  await step('GET /containers/(id)/top of a stopped container', 'GET', (e) => `/v1.12/containers/${ids[e].c}/top`);
  await step('POST /commit', 'POST', (e) => `/v1.12/commit?container=${ids[e].c}&repo=diffcommit`, '{}', json);
  await step('GET /containers/(id)/json of a missing container', 'GET', () => '/v1.12/containers/nosuchcontainer/json');
  await step('DELETE /containers/(id)', 'DELETE', (e) => `/v1.12/containers/${ids[e].c}`);
  await step('DELETE /images/(name) untag', 'DELETE', () => '/v1.12/images/diffbox:second');
  await step('DELETE /images/(name) of a missing image', 'DELETE', () => '/v1.12/images/nosuchimage');
  await step('GET /v1.13/version', 'GET', () => '/v1.13/version');

  const unexpected = found.filter((d) => !ALLOWED.some((a) => a.match.test(d)));
  const stale = ALLOWED.filter((a) => !found.some((d) => a.match.test(d)));
  if (process.env.STEVEDORE_DIFFERENTIAL_REPORT) fs.writeFileSync(process.env.STEVEDORE_DIFFERENTIAL_REPORT, `${found.join('\n')}\n`);
  assert.deepEqual(unexpected, [], 'differences not listed as deliberate');
  assert.deepEqual(stale.map((a) => String(a.match)), [], 'listed differences that no longer occur');
});
