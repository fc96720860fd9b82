// The build farm through the real CLI (`DOCKER_BUILDKIT=0 docker build`) and
// raw HTTP: every instruction, the cache, -q/-t/--no-cache, the rm/forcerm
// rules per version, the output format per version, bad input. The farm
// under faults is build-faults.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { shortTempDir, sleep, type Stack, startRegistry, startStackWithBusybox, stopStack } from './harness';
import { containerNames, context, redisCli } from './build-fixtures';

/** The context as a tar (for raw HTTP). */
function contextTar(files: Record<string, string | Buffer>): Buffer {
  const dir = context(files);
  return execFileSync('tar', ['-C', dir, '-cf', '-', '.']);
}

const EVERY_INSTRUCTION = `# every instruction of the Docker 1.0 builder
FROM busybox
MAINTAINER The Crew <crew@example.com>
ENV GREETING hi there
ENV APP_HOME /app
RUN echo "$GREETING" > /greeting && \\
    echo built-by-run
RUN ["/bin/sh", "-c", "echo exec-form > /exec-form"]
ADD hello.txt $APP_HOME/
ADD bundle.tar /unpacked
COPY tree /tree/
ADD *.conf /confs/
VOLUME ["/data"]
WORKDIR /app
WORKDIR sub
EXPOSE 8080 53/udp
ONBUILD RUN echo child-trigger
USER 1000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $GREETING from $(pwd) as $(id -u); cat /app/hello.txt /unpacked/inner.txt /tree/leaf /confs/a.conf /confs/b.conf /exec-form"]
`;

function everyInstructionContext(): string {
  const bundleDir = context({ 'inner.txt': 'from the tar\n' });
  const dir = context({
    Dockerfile: EVERY_INSTRUCTION,
    'hello.txt': 'hello file\n',
    'tree/leaf': 'leaf\n',
    'a.conf': 'conf a\n',
    'b.conf': 'conf b\n',
  });
  execFileSync('tar', ['-C', bundleDir, '-cf', path.join(dir, 'bundle.tar'), 'inner.txt']);
  return dir;
}

describe('docker build', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
  });
  after(() => stopStack(stack));

  test('every instruction builds; the image carries what each set; the rebuild is all cache; -t, --no-cache, -q', async () => {
    const dir = everyInstructionContext();
    const first = await stack.docker(['build', '-t', 'crew/every:1', dir], { timeoutMs: 180_000 });
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const id = /Successfully built ([0-9a-f]{12})/.exec(first.stdout)?.[1];
    assert.ok(id, first.stdout);
    assert.match(first.stdout, /^Step 0 : FROM busybox$/m);
    assert.match(first.stdout, /^built-by-run$/m, 'the RUN output is streamed');
    assert.match(first.stdout, /^Step 17 : CMD \[/m, 'steps are numbered from 0, comments and continuations do not count');

    const run = await stack.docker(['run', '--rm', 'crew/every:1']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'hi there from /app/sub as 1000\nhello file\nfrom the tar\nleaf\nconf a\nconf b\nexec-form\n');
    const inspect = JSON.parse((await stack.docker(['inspect', 'crew/every:1'])).stdout)[0];
    assert.equal(inspect.Author, 'The Crew <crew@example.com>');
    assert.deepEqual(inspect.Config.Entrypoint, ['/bin/sh', '-c']);
    assert.equal(inspect.Config.WorkingDir, '/app/sub');
    assert.equal(inspect.Config.User, '1000');
    assert.deepEqual(Object.keys(inspect.Config.ExposedPorts).sort(), ['53/udp', '8080/tcp']);
    assert.deepEqual(Object.keys(inspect.Config.Volumes), ['/data']);
    assert.deepEqual(inspect.Config.OnBuild, ['RUN echo child-trigger']);
    assert.ok(inspect.Config.Env.includes('GREETING=hi there') && inspect.Config.Env.includes('APP_HOME=/app'));
    const owner = await stack.docker(['run', '--rm', '--entrypoint', 'stat', 'crew/every:1', '-c', '%u:%g', '/app/hello.txt', '/tree/leaf', '/unpacked/inner.txt']);
    assert.equal(owner.stdout, '0:0\n0:0\n0:0\n', 'what ADD and COPY put in is root\'s');

    const again = await stack.docker(['build', '-t', 'crew/every:1', dir], { timeoutMs: 60_000 });
    assert.equal(again.code, 0, again.stderr);
    assert.equal((again.stdout.match(/ ---> Using cache/g) ?? []).length, 17, 'every step after FROM comes from the cache');
    assert.doesNotMatch(again.stdout, /Running in/);
    assert.match(again.stdout, new RegExp(`Successfully built ${id}`));

    const nocache = await stack.docker(['build', '--no-cache', dir], { timeoutMs: 180_000 });
    assert.equal(nocache.code, 0, nocache.stderr);
    assert.doesNotMatch(nocache.stdout, /Using cache/);
    assert.notEqual(/Successfully built ([0-9a-f]{12})/.exec(nocache.stdout)?.[1], id);

    const quiet = await stack.docker(['build', '-q', '--no-cache', dir], { timeoutMs: 180_000 });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stdout, /^built-by-run$/m, 'q: the RUN output is not sent');
    assert.match(quiet.stdout, /Successfully built [0-9a-f]{12}/);
    assert.deepEqual(await containerNames(stack), [], 'rm (the default) removed every intermediate container');
  });

  test('a context larger than what goes through Redis arrives whole (its rest through the blob store), and leaves nothing', async () => {
    const payload = crypto.randomBytes(3 * 1024 * 1024 + 12345);
    const dir = context({ Dockerfile: 'FROM busybox\nADD payload.bin /payload.bin\nRUN sha256sum /payload.bin\n', 'payload.bin': payload });
    const r = await stack.docker(['build', '--rm', dir], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${crypto.createHash('sha256').update(payload).digest('hex')}  /payload.bin`));
    assert.deepEqual(fs.readdirSync(path.join(stack.root, 'images', 'blobs')).filter((f) => !f.startsWith('.')), [], 'the blob went with the build');
    assert.equal(redisCli(stack, '--scan', '--pattern', '*:context').trim(), '', 'no context left in Redis');
  });

  test('ONBUILD triggers run in the child build; .dockerignore excludes, from the CLI and from a raw context', async () => {
    const parent = context({ Dockerfile: 'FROM busybox\nONBUILD ADD . /app\nONBUILD RUN ls -a /app > /listing\n' });
    assert.equal((await stack.docker(['build', '-t', 'crew/parent', parent], { timeoutMs: 60_000 })).code, 0);
    const files = { Dockerfile: 'FROM crew/parent\nRUN cat /listing\n', '.dockerignore': '*.log\nsecret\n', 'keep.txt': 'k', 'noise.log': 'n', secret: 's' };
    const child = await stack.docker(['build', '-t', 'crew/child', context(files)], { timeoutMs: 60_000 });
    assert.equal(child.code, 0, child.stderr);
    assert.match(child.stdout, /# Executing 2 build triggers/);
    assert.match(child.stdout, /Step onbuild-0 : ADD \. \/app\n/);
    const listing = (await stack.docker(['run', '--rm', 'crew/child', 'cat', '/listing'])).stdout.split('\n').filter(Boolean).sort();
    assert.deepEqual(listing, ['.', '..', '.dockerignore', 'Dockerfile', 'keep.txt']);
    assert.equal((await stack.docker(['inspect', '-f', '{{.Config.OnBuild}}', 'crew/child'])).stdout.trim(), '[]', 'triggers are not inherited');

    // A client that sends everything: the daemon applies .dockerignore itself.
    const raw = await stack.request('POST', '/v1.12/build?t=crew/raw', { body: contextTar(files) });
    assert.equal(raw.status, 200, raw.text);
    const rawListing = (await stack.docker(['run', '--rm', 'crew/raw', 'cat', '/listing'])).stdout.split('\n').filter(Boolean).sort();
    assert.deepEqual(rawListing, ['.', '..', '.dockerignore', 'Dockerfile', 'keep.txt']);
  });

  test('rm and forcerm: --rm=false leaves every container, a failure leaves the failed step\'s, --force-rm none', async () => {
    const ok = context({ Dockerfile: 'FROM busybox\nRUN echo one\nENV A b\n' });
    const kept = await stack.docker(['build', '--rm=false', ok], { timeoutMs: 60_000 });
    assert.equal(kept.code, 0, kept.stderr);
    assert.doesNotMatch(kept.stdout, /Removing intermediate container/);
    assert.equal((await containerNames(stack)).length, 2, 'RUN and ENV each left their container');
    assert.equal((await stack.docker(['rm', ...(await containerNames(stack))])).code, 0);

    const failing = context({ Dockerfile: 'FROM busybox\nRUN echo first\nRUN echo oops >&2; exit 3\nRUN echo never\n' });
    const failed = await stack.docker(['build', failing], { timeoutMs: 60_000 });
    assert.equal(failed.code, 3, 'the CLI exits with the failed command\'s status');
    assert.match(failed.stderr + failed.stdout, /The command \[\/bin\/sh -c echo oops >&2; exit 3\] returned a non-zero code: 3/);
    assert.doesNotMatch(failed.stdout, /never/);
    const left = await containerNames(stack);
    assert.equal(left.length, 1, 'exactly the failed step\'s container');
    assert.match((await stack.docker(['inspect', '-f', '{{.State.ExitCode}}', left[0]])).stdout, /^3/);
    assert.equal((await stack.docker(['rm', left[0]])).code, 0);

    const forced = await stack.docker(['build', '--force-rm', '--no-cache', failing], { timeoutMs: 60_000 });
    assert.notEqual(forced.code, 0);
    assert.match(forced.stdout, /Removing intermediate container [0-9a-f]{12}\n/);
    assert.deepEqual(await containerNames(stack), []);
  });

  test('raw HTTP: the output per version (text before v1.8, JSON from it) and the rm/forcerm defaults per version', async () => {
    const good = contextTar({ Dockerfile: 'FROM busybox\nRUN echo out; echo err >&2\n' });
    const v17 = await stack.request('POST', '/v1.7/build?nocache=1&rm=1', { body: good });
    assert.equal(v17.status, 200);
    assert.equal(v17.headers['content-type'], undefined);
    assert.match(v17.text, /^Step 0 : FROM busybox\n\r ---> [0-9a-f]{12}\n\r/);
    assert.match(v17.text, /\rout\n\r/);
    assert.match(v17.text, /\r\u001b\[91merr\n\u001b\[0m\r/);
    assert.match(v17.text, /Successfully built [0-9a-f]{12}\n\r$/);
    const v112 = await stack.request('POST', '/v1.12/build?nocache=1', { body: good });
    assert.equal(v112.headers['content-type'], 'application/json');
    const lines = v112.text.split('\r\n').filter(Boolean).map((l) => JSON.parse(l) as { stream?: string });
    assert.deepEqual(lines[0], { stream: 'Step 0 : FROM busybox\n' });
    assert.ok(lines.some((l) => l.stream === '\u001b[91merr\n\u001b[0m'));
    assert.match(v112.text, /" ---\\u003e [0-9a-f]{12}\\n"/, '> escaped as Go did');

    const bad = contextTar({ Dockerfile: 'FROM busybox\nRUN echo a\nRUN exit 2\n' });
    const jsonError = await stack.request('POST', '/v1.12/build?nocache=1&forcerm=1', { body: bad });
    const last = JSON.parse(jsonError.text.trim().split('\r\n').pop()!);
    // errorDetail.code: the failed command's exit status (API 1.8: "it returns the exit status of the failed command").
    assert.deepEqual(last, { errorDetail: { code: 2, message: 'The command [/bin/sh -c exit 2] returned a non-zero code: 2' }, error: 'The command [/bin/sh -c exit 2] returned a non-zero code: 2' });
    const textError = await stack.request('POST', '/v1.7/build?nocache=1&forcerm=1', { body: bad });
    assert.match(textError.text, /\rError: The command \[\/bin\/sh -c exit 2\] returned a non-zero code: 2\r\n$/);
    assert.deepEqual(await containerNames(stack), [], 'forcerm=1 is honoured at v1.7 and v1.12');

    // Successful builds: v1.11 without rm keeps its container, v1.12 without rm does not; forcerm=1 implies rm at v1.12 only.
    const one = contextTar({ Dockerfile: 'FROM busybox\nRUN true\n' });
    const cases: Array<[string, number]> = [['/v1.11/build?nocache=1', 1], ['/v1.12/build?nocache=1', 0], ['/v1.12/build?nocache=1&rm=0', 1], ['/v1.12/build?nocache=1&rm=0&forcerm=1', 0], ['/v1.11/build?nocache=1&rm=0&forcerm=1', 1], ['/v1.12/build?nocache=1&rm=0&forcerm=true', 1]];
    for (const [url, leftBehind] of cases) {
      const r = await stack.request('POST', url, { body: one });
      assert.equal(r.status, 200, `${url}: ${r.text}`);
      const names = await containerNames(stack);
      assert.equal(names.length, leftBehind, url);
      if (names.length) await stack.docker(['rm', ...names]);
    }
    // A compressed context (gzip, bzip2, xz) is read by its first bytes.
    for (const tool of ['gzip', 'bzip2', 'xz']) {
      const packed = execFileSync(tool, ['-c'], { input: contextTar({ Dockerfile: `FROM busybox\nRUN echo packed-with-${tool}\n` }) });
      const r = await stack.request('POST', '/v1.12/build?nocache=1', { body: packed });
      assert.ok(r.text.includes(`{"stream":"packed-with-${tool}\\n"}`), `${tool}: ${r.text}`);
      assert.match(r.text, /Successfully built/, tool);
    }
    const old = await stack.request('POST', '/v1.2/build', { body: one });
    assert.equal(old.status, 500);
    assert.equal(old.text.trim(), 'Multipart upload for build is no longer supported. Please upgrade your docker client.');
  });

  test('FROM pulls a missing image with the credentials the CLI sends (X-Registry-Config); remote= and ADD of a URL fetch over HTTP', async () => {
    // A password no other byte of the test has: searched for afterwards wherever Stevedore keeps anything.
    const password = `pw-${crypto.randomBytes(12).toString('hex')}`;
    const registry = await startRegistry({ username: 'bob', password });
    const server = http.createServer((req, res) => {
      if (req.url === '/Dockerfile') res.end('FROM busybox\nADD http://127.0.0.1:' + (server.address() as AddressInfo).port + '/files/payload.txt /fetched/\nRUN cat /fetched/payload.txt\n');
      else if (req.url === '/files/payload.txt') res.end('fetched over http\n');
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const image = `${registry.address}/crew/base`;
      assert.equal((await stack.docker(['tag', 'busybox', image])).code, 0);
      assert.equal((await stack.docker(['login', registry.address, '-u', 'bob', '--password-stdin'], { input: `${password}\n` })).code, 0);
      assert.equal((await stack.docker(['push', image])).code, 0);
      assert.equal((await stack.docker(['rmi', image])).code, 0);
      const pulled = await stack.docker(['build', '-t', 'crew/from-registry', context({ Dockerfile: `FROM ${image}\nRUN echo on-top\n` })], { timeoutMs: 120_000 });
      assert.equal(pulled.code, 0, pulled.stderr + pulled.stdout);
      assert.match(pulled.stdout, /on-top/);
      assert.equal((await stack.docker(['inspect', '-f', '{{.Id}}', image])).code, 0, 'the base image was pulled');
      assert.equal((await stack.docker(['logout', registry.address])).code, 0);
      assert.equal((await stack.docker(['rmi', image])).code, 0);
      const refused = await stack.docker(['build', context({ Dockerfile: `FROM ${image}\n` })], { timeoutMs: 60_000 });
      assert.notEqual(refused.code, 0, 'without credentials the pull is refused');

      // Gate G5: before v1.9 the build's X-Registry-Auth is FROM's credentials; from v1.9 it is ignored.
      const auth = Buffer.from(JSON.stringify({ username: 'bob', password, serveraddress: registry.address })).toString('base64');
      const fromPrivate = contextTar({ Dockerfile: `FROM ${image}\n` });
      const v18 = await stack.request('POST', '/v1.8/build', { body: fromPrivate, headers: { 'X-Registry-Auth': auth } });
      assert.match(v18.text, /Successfully built/, v18.text);
      assert.equal((await stack.docker(['rmi', image])).code, 0);
      const v19 = await stack.request('POST', '/v1.9/build', { body: fromPrivate, headers: { 'X-Registry-Auth': auth } });
      assert.doesNotMatch(v19.text, /Successfully built/);
      assert.match(v19.text, /"error"/);

      const port = (server.address() as AddressInfo).port;
      const remote = await stack.request('POST', `/v1.12/build?t=crew/remote&remote=${encodeURIComponent(`http://127.0.0.1:${port}/Dockerfile`)}`);
      assert.equal(remote.status, 200);
      assert.match(remote.text, /fetched over http/);
      assert.match(remote.text, /Successfully built/);
      const mode = await stack.docker(['run', '--rm', 'crew/remote', 'stat', '-c', '%a', '/fetched/payload.txt']);
      assert.equal(mode.stdout, '600\n', 'a downloaded file keeps mode 0600, as Docker 1.0 left it');

      // The credentials of those builds were held in memory only: not a byte of the password in
      // the data root (the CLI's own config aside), in any Redis key, or in Redis's append-only file.
      await sleep(1500); // the append-only file is written every second
      const found = spawnSync('grep', ['-r', '-a', '-l', '--exclude-dir=docker-cli', password, stack.root], { encoding: 'utf8' });
      assert.equal(found.stdout, '', `files holding the password: ${found.stdout}`);
      assert.equal(found.status, 1, 'grep read the data root and found nothing');
      const keys = redisCli(stack, '--scan', '--pattern', '*').split('\n').filter(Boolean);
      assert.ok(keys.length > 0);
      for (const key of keys) {
        const type = redisCli(stack, 'TYPE', key).trim();
        const read = { string: ['GET', key], hash: ['HGETALL', key], list: ['LRANGE', key, '0', '-1'], set: ['SMEMBERS', key], zset: ['ZRANGE', key, '0', '-1'], stream: ['XRANGE', key, '-', '+'] }[type];
        if (read) assert.ok(!redisCli(stack, ...read).includes(password), `Redis key ${key} holds the password`);
      }
      assert.ok(fs.readdirSync(path.join(stack.root, 'redis')).length > 0, 'the append-only file is there to search');
    } finally {
      server.close();
      await registry.stop();
    }
    assert.deepEqual(await containerNames(stack), []);
  });

  test('remote= with a git URL: the repository is cloned and built; an unreachable one is a clear error', async () => {
    const base = shortTempDir('git-');
    const repo = path.join(base, 'app');
    fs.mkdirSync(repo);
    fs.writeFileSync(path.join(repo, 'Dockerfile'), 'FROM busybox\nADD message /message\nCMD ["cat", "/message"]\n');
    fs.writeFileSync(path.join(repo, 'message'), 'from git\n');
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=crew', '-c', 'user.email=crew@example.com', ...args], { cwd: repo });
    git('init', '-q');
    git('add', '.');
    git('commit', '-q', '-m', 'app');
    const port = await new Promise<number>((resolve) => {
      const probe = http.createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    const daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, base], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50; i++) {
        try {
          execFileSync('git', ['ls-remote', `git://127.0.0.1:${port}/app`], { stdio: 'ignore' });
          break;
        } catch {
          await sleep(100);
        }
      }
      const built = await stack.request('POST', `/v1.12/build?t=crew/from-git&remote=${encodeURIComponent(`git://127.0.0.1:${port}/app`)}`);
      assert.equal(built.status, 200);
      assert.match(built.text, /Successfully built/, built.text);
      assert.equal((await stack.docker(['run', '--rm', 'crew/from-git'])).stdout, 'from git\n');
      const missing = await stack.request('POST', `/v1.12/build?remote=${encodeURIComponent(`git://127.0.0.1:${port}/nosuch`)}`);
      assert.equal(missing.status, 500);
      assert.match(missing.text, /^Error trying to use git: /);
    } finally {
      daemon.kill();
      fs.rmSync(base, { recursive: true, force: true });
    }
  });

  test('bad input: each a clear error, nothing left behind, the daemon answering', async () => {
    const notTar = await stack.request('POST', '/v1.12/build', { body: Buffer.from('this is not an archive at all\n'.repeat(40)) });
    assert.equal(notTar.status, 500);
    assert.match(notTar.text, /not a valid tar archive|not a valid archive/);
    const noDockerfile = await stack.request('POST', '/v1.12/build', { body: contextTar({ 'other.txt': 'x' }) });
    assert.equal(noDockerfile.status, 500);
    assert.equal(noDockerfile.text.trim(), "Can't build a directory with no Dockerfile");
    const emptyDockerfile = await stack.request('POST', '/v1.12/build', { body: contextTar({ Dockerfile: '' }) });
    assert.equal(emptyDockerfile.status, 500);
    assert.equal(emptyDockerfile.text, 'Dockerfile cannot be empty\n');
    const blank = await stack.request('POST', '/v1.12/build', { body: contextTar({ Dockerfile: '\n# nothing\n' }) });
    assert.match(blank.text, /No image was generated\. This may be because the Dockerfile does not, like, do anything\./);
    // Docker 1.0 ignored a name it could not tag with: the build succeeds, untagged.
    const badName = await stack.request('POST', '/v1.12/build?t=Not%20A%20Name', { body: contextTar({ Dockerfile: 'FROM busybox\n' }) });
    assert.equal(badName.status, 200);
    assert.match(badName.text, /Successfully built [0-9a-f]{12}/);
    assert.doesNotMatch(badName.text, /errorDetail/);

    const outcomes: Array<[Record<string, string>, RegExp]> = [
      [{ Dockerfile: 'FROM nosuch/image\n' }, /nosuch\/image|No such image|not found|Cannot reach|registry/i],
      [{ Dockerfile: 'FROM busybox\nADD ../outside /x\n' }, /Forbidden path outside the build context: \.\.\/outside/],
      [{ Dockerfile: 'FROM busybox\nADD missing.txt /x\n' }, /missing\.txt: no such file or directory/],
      [{ Dockerfile: 'FROM busybox\nCOPY http://127.0.0.1:1/x /x\n' }, /Source can't be an URL for COPY/],
      [{ Dockerfile: 'FROM busybox\nENV ONLYKEY\n' }, /Invalid ENV format/],
      [{ Dockerfile: 'RUN true\n' }, /Please provide a source image with `from` prior to run/],
      [{ Dockerfile: 'FROM busybox\nONBUILD ONBUILD RUN true\n' }, /Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed/],
      [{ Dockerfile: 'FROM busybox\nINSERT x y\n' }, /INSERT has been deprecated/],
    ];
    for (const [files, message] of outcomes) {
      const r = await stack.docker(['build', '--force-rm', context(files)], { timeoutMs: 60_000 });
      assert.notEqual(r.code, 0, `${files.Dockerfile} should fail`);
      assert.match(r.stderr + r.stdout, message, files.Dockerfile);
    }
    // An absolute link out of the context is refused, not followed.
    const linkDir = context({ Dockerfile: 'FROM busybox\nADD passwd /x\n' });
    fs.symlinkSync('/etc/passwd', path.join(linkDir, 'passwd'));
    const link = await stack.request('POST', '/v1.12/build', { body: execFileSync('tar', ['-C', linkDir, '-cf', '-', '.']) });
    assert.match(link.text, /Forbidden path outside the build context: passwd/);

    const unknown = await stack.docker(['build', context({ Dockerfile: 'FROM busybox\nFROBNICATE now\nENV A b\n' })], { timeoutMs: 60_000 });
    assert.equal(unknown.code, 0, 'Docker 1.0 skipped an unknown instruction');
    assert.match(unknown.stdout + unknown.stderr, /# Skipping unknown instruction FROBNICATE/);
    assert.deepEqual(await containerNames(stack), []);
    assert.equal((await stack.request('GET', '/_ping')).text, 'OK');
  });
});
