// Pull, push and search against Debian's docker-registry on 127.0.0.1 (with
// and without htpasswd), through the real CLI; interoperability with the
// Docker engine 20.10; concurrent pulls sharing layers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { busyboxRootfsTar, makeTar, tarBuffer } from './images-fixtures';
import { freePort, startReferenceDocker, startRegistry, startStack, stopStack, type Stack } from './harness';

describe('registries', () => {
  let stack: Stack;
  let open: Awaited<ReturnType<typeof startRegistry>>;
  let secured: Awaited<ReturnType<typeof startRegistry>>;
  let tokened: Awaited<ReturnType<typeof startRegistry>>;
  before(async () => {
    [stack, open, secured, tokened] = await Promise.all([
      startStack(),
      startRegistry(),
      startRegistry({ username: 'alice', password: 's3cret' }),
      startRegistry({ username: 'bob', password: 't0ken', tokens: true }),
    ]);
    assert.equal((await stack.docker(['import', busyboxRootfsTar(), 'busybox:latest'])).code, 0);
  });
  after(async () => {
    await Promise.all([stopStack(stack), open?.stop(), secured?.stop(), tokened?.stop()]);
  });

  test('login, push, rmi, pull and search against a registry with htpasswd', async () => {
    const name = `${secured.address}/team/bb:v1`;
    assert.equal((await stack.docker(['tag', 'busybox', name])).code, 0);
    const anonymous = await stack.docker(['push', name]);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stdout + anonymous.stderr, /no basic auth credentials: .* requires a login/);

    const login = await stack.docker(['login', secured.address, '-u', 'alice', '--password-stdin'], { input: 's3cret\n' });
    assert.equal(login.code, 0, login.stderr);
    const pushed = await stack.docker(['push', name]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, /Pushed/);
    assert.match(pushed.stdout, /v1: digest: sha256:[0-9a-f]{64} size: \d+/);
    const again = await stack.docker(['push', name]);
    assert.match(again.stdout, /Layer already exists/);

    // A v1.2 - v1.4 client sends its credentials as the body; with neither header nor body, Docker 1.0 answered 500 EOF.
    const pushPath = `/v1.3/images/${secured.address}/team/bb/push?tag=v1`;
    const bodyCreds = await stack.request('POST', pushPath, { body: JSON.stringify({ username: 'alice', password: 's3cret', email: '', serveraddress: secured.address }) });
    assert.equal(bodyCreds.status, 200, bodyCreds.text);
    assert.match(bodyCreds.text, /already exists/);
    assert.doesNotMatch(bodyCreds.text, /"error"/);
    const anonymousBody = await stack.request('POST', pushPath, { body: '{}' });
    assert.match(anonymousBody.text, /"error":.*auth/i, 'the body is the credentials: none, refused');
    const neither = await stack.request('POST', pushPath);
    assert.equal(neither.status, 500);
    assert.equal(neither.text, 'EOF\n');

    assert.equal((await stack.docker(['rmi', name])).code, 0);
    const pulled = await stack.docker(['pull', name]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, /Status: Downloaded newer image for/);
    const size = (await stack.docker(['inspect', '-f', '{{.Size}}', name])).stdout.trim();
    assert.equal(size, (await stack.docker(['inspect', '-f', '{{.Size}}', 'busybox'])).stdout.trim());
    const upToDate = await stack.docker(['pull', name]);
    assert.match(upToDate.stdout, /Image is up to date/);

    const search = await stack.docker(['search', `${secured.address}/team`]);
    assert.equal(search.code, 0, search.stderr);
    assert.match(search.stdout, new RegExp(`${secured.address.replace(/\./g, '\\.')}/team/bb`));
    assert.equal((await stack.docker(['logout', secured.address])).code, 0);
  });

  test('bearer tokens: login, push, pull and search with tokens scoped by the token server', async () => {
    const tokens = tokened.tokens!;
    const name = `${tokened.address}/crew/bb:v1`;
    // Content of its own, so that the pull downloads it.
    const unique = await makeTar([{ name: 'token.txt', body: `tokens ${Date.now()}\n` }]);
    const imported = await stack.request('POST', `/v1.12/images/create?fromSrc=-&repo=${tokened.address}/crew/bb&tag=v1`, { body: unique });
    assert.equal(imported.status, 200, imported.text);
    // Without a login the token server's anonymous token grants nothing: the registry refuses.
    const anonymous = await stack.docker(['push', name]);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stdout + anonymous.stderr, /authentication required/);
    assert.ok(tokens.requests.some((r) => r.user === '' && r.scope === 'repository:crew/bb:push,pull' && r.status === 200));

    const wrong = await stack.docker(['login', tokened.address, '-u', 'bob', '--password-stdin'], { input: 'nope\n' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /401|Wrong login/);
    const login = await stack.docker(['login', tokened.address, '-u', 'bob', '--password-stdin'], { input: 't0ken\n' });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Login Succeeded/);

    const pushed = await stack.docker(['push', name]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stdout, /v1: digest: sha256:[0-9a-f]{64}/);
    assert.ok(tokens.requests.some((r) => r.user === 'bob' && r.scope === 'repository:crew/bb:push,pull' && r.status === 200));

    assert.equal((await stack.docker(['rmi', name])).code, 0);
    const pulled = await stack.docker(['pull', name]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, /Downloaded newer image/);
    assert.ok(tokens.requests.some((r) => r.user === 'bob' && r.scope === 'repository:crew/bb:pull' && r.status === 200));

    const search = await stack.docker(['search', `${tokened.address}/crew`]);
    assert.equal(search.code, 0, search.stderr);
    assert.match(search.stdout, /crew\/bb/);
    assert.ok(tokens.requests.some((r) => r.user === 'bob' && r.scope === 'registry:catalog:*'));

    // Every registry request after the first challenge carried a token the registry accepted.
    const log = tokened.accessLog();
    assert.match(log, /"(PUT|GET) \/v2\/crew\/bb\/manifests\/v1 HTTP\/1\.1" 20[01]/);
    assert.equal((await stack.docker(['logout', tokened.address])).code, 0);
  });

  test('pull errors: an unknown repository and a registry that is down', async () => {
    const unknown = await stack.docker(['pull', `${open.address}/nothing/here:v9`]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /manifest for .*nothing\/here:v9 not found/);
    const raw = await stack.request('POST', `/v1.12/images/create?fromImage=${open.address}/nothing/here&tag=v9`);
    assert.equal(raw.status, 404);
    const port = await freePort();
    const down = await stack.request('POST', `/v1.12/images/create?fromImage=127.0.0.1:${port}/x&tag=latest`);
    assert.equal(down.status, 500);
    assert.match(down.text, /Cannot reach the registry at http:\/\/127\.0\.0\.1:\d+\/v2\/: ECONNREFUSED/);
    const bad = await stack.request('POST', '/v1.12/images/create?fromImage=Not_Valid&tag=latest');
    assert.equal(bad.status, 500);
    assert.match(bad.text, /Invalid repository name/);
  });

  test('progress framing: text at v1.0, JSON with progressDetail from v1.1', async () => {
    const name = `${open.address}/frame/bb`;
    // Content of its own, so that no layer of it is present when pulled.
    const unique = await makeTar([{ name: 'frame.txt', body: `framing ${Date.now()}\n` }]);
    const imported = await stack.request('POST', `/v1.12/images/create?fromSrc=-&repo=${name}&tag=v1`, { body: unique });
    assert.equal(imported.status, 200, imported.text);
    assert.equal((await stack.docker(['push', `${name}:v1`])).code, 0);
    assert.equal((await stack.docker(['rmi', `${name}:v1`])).code, 0);
    const v10 = await stack.request('POST', `/v1.0/images/create?fromImage=${name}&tag=v1`);
    assert.equal(v10.status, 200);
    assert.equal(v10.headers['content-type'], undefined);
    // Text forms: `<status> \r\n` for a layer's status without numbers, and no layer IDs.
    assert.match(v10.text, /^Pulling from frame\/bb \r\n/);
    assert.match(v10.text, /\r\nPull complete \r\n/);
    assert.ok(!v10.text.includes('{'));
    assert.match(v10.text, /Status: (Downloaded newer image|Image is up to date) for .*\r\n$/);
    assert.equal((await stack.docker(['rmi', `${name}:v1`])).code, 0);
    // A malformed X-Registry-Auth is no credentials at all, as in Docker 1.0 (the registry is open).
    const v11 = await stack.request('POST', `/v1.11/images/create?fromImage=${name}&tag=v1`, { headers: { 'X-Registry-Auth': '!!not base64 json!!' } });
    assert.doesNotMatch(v11.text, /"error"/);
    assert.equal(v11.headers['content-type'], 'application/json');
    const messages = v11.text.split(/\r\n|(?<=\})(?=\{)/).filter(Boolean).map((l) => JSON.parse(l));
    const layerLines = messages.filter((m) => m.id && m.id !== 'v1');
    assert.ok(layerLines.length >= 2);
    for (const m of layerLines) assert.equal(typeof m.progressDetail, 'object');
    for (const m of layerLines) assert.ok(!v10.text.includes(m.id), `no layer ID in the v1.0 text (${m.id})`);
    assert.deepEqual(Object.keys(messages[0]), ['status', 'progressDetail', 'id']);

    // Gate G1 for push too: text at v1.0, JSON from v1.1.
    const pushV10 = await stack.request('POST', `/v1.0/images/${name}/push?tag=v1`, { headers: { 'X-Registry-Auth': Buffer.from('{}').toString('base64') } });
    assert.equal(pushV10.status, 200, pushV10.text);
    assert.equal(pushV10.headers['content-type'], undefined);
    assert.ok(pushV10.text.length > 0 && !pushV10.text.includes('{'), pushV10.text);
    const pushV11 = await stack.request('POST', `/v1.11/images/${name}/push?tag=v1`, { headers: { 'X-Registry-Auth': Buffer.from('{}').toString('base64') } });
    assert.equal(pushV11.headers['content-type'], 'application/json');
    const pushed = pushV11.text.split(/\r\n|(?<=\})(?=\{)/).filter(Boolean).map((l) => JSON.parse(l) as { status?: string });
    assert.ok(pushed.length >= 2 && pushed.every((m) => typeof m.status === 'string' || 'progressDetail' in m), pushV11.text);
  });

  test('a pull without a tag takes every tag of the repository: one after another at v1.3, also from v1.4 (gate G2)', async () => {
    const repo = `${open.address}/crew/multi`;
    const messagesOf = (text: string) => text.split(/\r\n|(?<=\})(?=\{)/).filter(Boolean).map((l) => JSON.parse(l) as { status?: string; id?: string; error?: string });
    for (const version of ['1.3', '1.4']) {
      for (const tag of ['a', 'b']) {
        const body = await makeTar([{ name: `${tag}.txt`, body: `tag ${tag} at ${version}\n` }]);
        const imported = await stack.request('POST', `/v1.12/images/create?fromSrc=-&repo=${repo}&tag=${tag}`, { body });
        assert.equal(imported.status, 200, imported.text);
        assert.equal((await stack.docker(['push', `${repo}:${tag}`])).code, 0);
        assert.equal((await stack.docker(['rmi', `${repo}:${tag}`])).code, 0, 'gone here: the pull downloads it');
      }
      const pulled = await stack.request('POST', `/v${version}/images/create?fromImage=${repo}`);
      assert.equal(pulled.status, 200, pulled.text);
      const messages = messagesOf(pulled.text);
      assert.ok(!messages.some((m) => m.error), pulled.text);
      const startOfB = messages.findIndex((m) => m.status?.startsWith('Pulling from') && m.id === 'b');
      const endOfA = messages.findIndex((m) => m.status === `Status: Downloaded newer image for ${repo}:a`);
      assert.ok(startOfB >= 0 && endOfA >= 0, pulled.text);
      // Side by side above v1.3: how they interleave depends on timing (the unit test of pullRepository shows the overlap).
      if (version === '1.3') assert.ok(endOfA < startOfB, `v1.3: tag a is whole before tag b starts\n${pulled.text}`);
      for (const tag of ['a', 'b']) assert.equal((await stack.docker(['inspect', `${repo}:${tag}`])).code, 0, `${repo}:${tag} pulled`);
    }
    const none = await stack.request('POST', `/v1.12/images/create?fromImage=${open.address}/crew/nothing-here`);
    assert.match(none.text, /not found/);
    // Search's raw answer: Docker 1.0's keys (and is_automated, docs/deviations.md), most stars first.
    const found = JSON.parse((await stack.request('GET', `/v1.12/images/search?term=${open.address}/crew/multi`)).text) as Array<Record<string, unknown>>;
    assert.ok(found.some((r) => r.name === `${open.address}/crew/multi`), JSON.stringify(found));
    for (const r of found) assert.deepEqual(Object.keys(r), ['description', 'is_automated', 'is_official', 'is_trusted', 'name', 'star_count']);
    assert.deepEqual(found.map((r) => r.star_count), [...found.map((r) => r.star_count as number)].sort((x, y) => y - x));
  });

  test('a second push of a repository while one runs is refused, as Docker 1.0 did', async () => {
    const name = `${open.address}/crew/twice`;
    const body = await makeTar([{ name: 'big.bin', body: randomBytes(6 * 1024 * 1024).toString('base64') }]);
    assert.equal((await stack.request('POST', `/v1.12/images/create?fromSrc=-&repo=${name}&tag=v1`, { body })).status, 200);
    const auth = { 'X-Registry-Auth': Buffer.from('{}').toString('base64') };
    const [a, b] = await Promise.all([1, 2].map(() => stack.request('POST', `/v1.12/images/${name}/push?tag=v1`, { headers: auth })));
    const refusedOnes = [a, b].filter((r) => r.status === 500);
    assert.equal(refusedOnes.length, 1, `${a.status} ${a.text.slice(0, 200)} / ${b.status} ${b.text.slice(0, 200)}`);
    assert.equal(refusedOnes[0].text, `push ${name} is already in progress\n`);
    assert.match([a, b].find((r) => r.status === 200)!.text, /digest: sha256:/);
    const later = await stack.request('POST', `/v1.12/images/${name}/push?tag=v1`, { headers: auth });
    assert.equal(later.status, 200, 'once the first is done, a push goes again');
  });

  test('a second pull of what is being pulled waits for the first, and says so', async () => {
    const name = `${open.address}/crew/waited`;
    const body = await makeTar([{ name: 'big.bin', body: randomBytes(6 * 1024 * 1024).toString('base64') }]);
    assert.equal((await stack.request('POST', `/v1.12/images/create?fromSrc=-&repo=${name}&tag=v1`, { body })).status, 200);
    assert.equal((await stack.docker(['push', `${name}:v1`])).code, 0);
    assert.equal((await stack.docker(['rmi', `${name}:v1`])).code, 0);
    const [a, b] = await Promise.all([1, 2].map(() => stack.request('POST', `/v1.12/images/create?fromImage=${name}&tag=v1`)));
    for (const r of [a, b]) assert.equal(r.status, 200, r.text);
    const waited = [a, b].filter((r) => r.text.includes(`Repository ${name} already being pulled by another client. Waiting.`));
    assert.equal(waited.length, 1, `${a.text.slice(0, 300)} / ${b.text.slice(0, 300)}`);
    assert.doesNotMatch(waited[0].text, /Pulling fs layer/, 'the waiting one downloads nothing');
    assert.equal((await stack.docker(['inspect', '-f', '{{.Id}}', `${name}:v1`])).code, 0, 'pulled once, there for both');
  });

  test('two pulls sharing a layer at once: both succeed, the shared layer is fetched once', async () => {
    const base = fs.readFileSync(busyboxRootfsTar());
    const baseId = 'a'.repeat(63) + '7';
    const meta = (id: string, parent?: string) => Buffer.from(JSON.stringify({ id, ...(parent ? { parent } : {}), created: '2014-06-09T12:00:00Z', architecture: 'amd64', os: 'linux' }));
    const children = ['1', '2'].map((n) => ({ id: `${n}`.repeat(64), body: `child ${n}\n` }));
    const entries = new Map<string, Buffer>([[`${baseId}/json`, meta(baseId)], [`${baseId}/layer.tar`, base]]);
    for (const c of children) {
      entries.set(`${c.id}/json`, meta(c.id, baseId));
      entries.set(`${c.id}/layer.tar`, await makeTar([{ name: 'child.txt', body: c.body }]));
    }
    entries.set('repositories', Buffer.from(JSON.stringify({ [`${open.address}/shared/one`]: { v1: children[0].id }, [`${open.address}/shared/two`]: { v1: children[1].id } })));
    assert.equal((await stack.request('POST', '/v1.12/images/load', { body: await tarBuffer(entries) })).status, 200);
    for (const r of ['one', 'two']) assert.equal((await stack.docker(['push', `${open.address}/shared/${r}:v1`])).code, 0);
    for (const r of ['one', 'two']) assert.equal((await stack.docker(['rmi', `${open.address}/shared/${r}:v1`])).code, 0);
    assert.equal(JSON.parse((await stack.request('GET', '/images/json?all=1')).text).filter((i: any) => i.Id === baseId).length, 0, 'the base went with its children');

    const logBefore = open.accessLog().split('\n').length;
    const [a, b] = await Promise.all(['one', 'two'].map((r) => stack.docker(['pull', `${open.address}/shared/${r}:v1`])));
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const blobGets = open.accessLog().split('\n').slice(logBefore - 1).filter((l) => /"GET \/v2\/shared\/(one|two)\/blobs\/sha256:[0-9a-f]+ /.test(l));
    const perDigest = new Map<string, number>();
    for (const l of blobGets) {
      const digest = /blobs\/(sha256:[0-9a-f]+)/.exec(l)![1];
      perDigest.set(digest, (perDigest.get(digest) ?? 0) + 1);
    }
    // Two configs, two child layers, one shared base layer: five blobs, each fetched once.
    assert.equal(perDigest.size, 5, blobGets.join('\n'));
    for (const [digest, n] of perDigest) assert.equal(n, 1, `${digest} fetched ${n} times`);
    const hist = await stack.docker(['history', '-q', `${open.address}/shared/one:v1`]);
    assert.equal(hist.stdout.trim().split('\n').length, 2);
  });

  test('an image pushed by the Docker engine 20.10 pulls and matches', async () => {
    const ref = await startReferenceDocker();
    try {
      const tarFile = busyboxRootfsTar();
      assert.equal((await ref.run(['import', tarFile, `${open.address}/fromref/bb:v1`])).code, 0);
      const pushed = await ref.run(['push', `${open.address}/fromref/bb:v1`]);
      assert.equal(pushed.code, 0, pushed.stderr);
      const pulled = await stack.docker(['pull', `${open.address}/fromref/bb:v1`]);
      assert.equal(pulled.code, 0, pulled.stderr);
      const refId = (await ref.run(['inspect', '-f', '{{.Id}}', `${open.address}/fromref/bb:v1`])).stdout.trim();
      const ourId = (await stack.docker(['inspect', '-f', '{{.Id}}', `${open.address}/fromref/bb:v1`])).stdout.trim();
      assert.equal(`sha256:${ourId}`, refId, 'the image is named by its config digest, as the Docker engine names it');
      // And back: the Docker engine pulls what Stevedore pushed.
      assert.equal((await stack.docker(['tag', 'busybox', `${open.address}/tostd/bb:v1`])).code, 0);
      assert.equal((await stack.docker(['push', `${open.address}/tostd/bb:v1`])).code, 0);
      const back = await ref.run(['pull', `${open.address}/tostd/bb:v1`]);
      assert.equal(back.code, 0, back.stderr);
      const ran = await ref.run(['run', '--rm', '--net=none', `${open.address}/tostd/bb:v1`, 'sh', '-c', 'echo pulled-and-ran']);
      assert.equal(ran.stdout.trim(), 'pulled-and-ran');
    } finally {
      await ref.stop();
    }
  });
});

