// top, diff, export, cp (both ways, today's /archive and Docker 1.0's
// /copy), pause/unpause, restart and attach through the real CLI.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { busyboxRootfsTar } from './images-fixtures';
import { shortTempDir, sleep, type Stack, startStackWithBusybox, stopStack } from './harness';

describe('container files and processes', () => {
  let stack: Stack;
  let work: string;
  before(async () => {
    stack = await startStackWithBusybox();
    work = shortTempDir('cfiles-');
  });
  after(async () => {
    await stopStack(stack);
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('diff lists what the container added, changed and deleted', async () => {
    const r = await stack.docker(['run', '--name', 'changer', 'busybox', 'sh', '-c', 'echo new > /tmp/added; rm /etc/group; echo more >> /etc/passwd']);
    assert.equal(r.code, 0, r.stderr);
    const diff = await stack.docker(['diff', 'changer']);
    assert.equal(diff.code, 0, diff.stderr);
    assert.deepEqual(diff.stdout.trim().split('\n'), ['C /etc', 'D /etc/group', 'C /etc/passwd', 'C /tmp', 'A /tmp/added']);
    const raw = JSON.parse((await stack.request('GET', '/v1.12/containers/changer/changes')).text);
    assert.deepEqual(raw.find((c: any) => c.Path === '/tmp/added'), { Kind: 1, Path: '/tmp/added' });
  });

  test('export streams the whole root filesystem, and emits an event', async () => {
    const since = Math.floor(Date.now() / 1000);
    const file = path.join(work, 'export.tar');
    const r = await stack.docker(['export', '-o', file, 'changer']);
    assert.equal(r.code, 0, r.stderr);
    const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n');
    assert.ok(names.includes('bin/busybox'));
    assert.ok(names.includes('tmp/added'));
    assert.ok(!names.includes('etc/group'), 'a deleted file is not exported');
    await sleep(1100);
    const ev = await stack.request('GET', `/v1.12/events?since=${since}&until=${Math.floor(Date.now() / 1000)}`);
    assert.ok(ev.text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).some((e) => e.status === 'export'));
  });

  test('cp out of and into a container (stopped and running), and POST /copy', async () => {
    const out = path.join(work, 'added.txt');
    assert.equal((await stack.docker(['cp', 'changer:/tmp/added', out])).code, 0);
    assert.equal(fs.readFileSync(out, 'utf8'), 'new\n');
    const dir = path.join(work, 'tmpdir');
    assert.equal((await stack.docker(['cp', 'changer:/tmp', dir])).code, 0);
    assert.ok(fs.existsSync(path.join(dir, 'added')));
    const hostFile = path.join(work, 'from-host.txt');
    fs.writeFileSync(hostFile, 'from the host\n');
    const into = await stack.docker(['cp', hostFile, 'changer:/tmp/']);
    assert.equal(into.code, 0, into.stderr);
    const back = path.join(work, 'back.txt');
    assert.equal((await stack.docker(['cp', 'changer:/tmp/from-host.txt', back])).code, 0);
    assert.equal(fs.readFileSync(back, 'utf8'), 'from the host\n');

    const running = (await stack.docker(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
    assert.equal((await stack.docker(['cp', hostFile, `${running}:/root/`])).code, 0);
    const seen = await stack.docker(['run', '--rm', 'busybox', 'true']);
    assert.equal(seen.code, 0);
    const check = await stack.request('GET', `/v1.12/containers/${running}/archive?path=/root/from-host.txt`);
    assert.equal(check.status, 200);
    const stat = JSON.parse(Buffer.from(String(check.headers['x-docker-container-path-stat']), 'base64').toString());
    assert.equal(stat.name, 'from-host.txt');
    assert.equal(stat.size, 14);
    assert.equal((await stack.docker(['rm', '-f', running])).code, 0);

    const copy = await stack.request('POST', '/v1.12/containers/changer/copy', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Resource: '/etc/passwd' }) });
    assert.equal(copy.status, 200);
    const copyFile = path.join(work, 'copy.tar');
    fs.writeFileSync(copyFile, copy.body);
    assert.deepEqual(execFileSync('tar', ['-tf', copyFile], { encoding: 'utf8' }).trim().split('\n'), ['passwd']);
    const noType = await stack.request('POST', '/v1.12/containers/changer/copy', { body: JSON.stringify({ Resource: '/etc/passwd' }) });
    assert.equal(noType.status, 500);
    assert.match(noType.text, /Content-Type not supported/);
    const empty = await stack.request('POST', '/v1.12/containers/changer/copy', { headers: { 'Content-Type': 'application/json' }, body: '{"Resource":""}' });
    assert.equal(empty.text, 'Path cannot be empty\n');
  });

  test('bad copies: missing paths, paths that leave the root, into a file', async () => {
    const missing = await stack.docker(['cp', 'changer:/etc/nothere', path.join(work, 'x')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Could not find the file \/etc\/nothere in container/);
    // A link that points out of the container resolves inside it, never on the host.
    const r = await stack.docker(['run', '--name', 'linker', 'busybox', 'sh', '-c', 'ln -s /../../../../etc /tmp/escape']);
    assert.equal(r.code, 0);
    const via = await stack.request('GET', '/v1.12/containers/linker/archive?path=/tmp/escape/passwd');
    assert.equal(via.status, 200);
    const file = path.join(work, 'via.tar');
    fs.writeFileSync(file, via.body);
    const content = execFileSync('tar', ['-xOf', file], { encoding: 'utf8' });
    assert.match(content, /^root:x:0:0:root:\/root:\/bin\/sh\nnobody:x:65534/, 'the container\'s passwd, not the host\'s');
    const hostFile = path.join(work, 'h.txt');
    fs.writeFileSync(hostFile, 'h');
    const intoFile = await stack.request('PUT', '/v1.12/containers/linker/archive?path=/etc/passwd', { body: fs.readFileSync(busyboxRootfsTar()) });
    assert.equal(intoFile.status, 500);
    assert.match(intoFile.text, /not a directory/);
    assert.equal((await stack.docker(['rm', 'linker'])).code, 0);
  });

  test('commit of a changed container: a new image on top of its own, with the change, the message and the author', async () => {
    const r = await stack.docker(['run', '--name', 'tocommit', 'busybox', 'sh', '-c', 'echo committed > /greeting; rm /etc/group']);
    assert.equal(r.code, 0, r.stderr);
    const c = await stack.docker(['commit', '-m', 'a message', '-a', 'someone', 'tocommit', 'snap:v1']);
    assert.equal(c.code, 0, c.stderr);
    const id = c.stdout.trim().replace(/^sha256:/, '');
    const meta = await stack.docker(['inspect', '-f', '{{.Id}}|{{.Comment}}|{{.Author}}|{{.Parent}}|{{.Container}}', 'snap:v1']);
    const [imageId, comment, author, parent, container] = meta.stdout.trim().split('|');
    assert.equal(imageId, id);
    assert.deepEqual([comment, author], ['a message', 'someone']);
    assert.equal(parent, (await stack.docker(['inspect', '-f', '{{.Id}}', 'busybox'])).stdout.trim());
    assert.equal(container, (await stack.docker(['inspect', '-f', '{{.Id}}', 'tocommit'])).stdout.trim());
    const run = await stack.docker(['run', '--rm', 'snap:v1', 'sh', '-c', 'cat /greeting; test -e /etc/group && echo still-there || echo gone; cat /etc/hostname']);
    assert.equal(run.code, 0, run.stderr);
    const [greeting, group, hostname] = run.stdout.trim().split('\n');
    assert.deepEqual([greeting, group], ['committed', 'gone']);
    assert.match(hostname, /^[0-9a-f]{12}$/, 'the runtime\'s own /etc/hostname was not committed');
    const history = await stack.docker(['history', '-q', 'snap:v1']);
    assert.equal(history.stdout.trim().split('\n').length, 2);
    // A config in the body is merged over the container's.
    const withConfig = await stack.request('POST', '/v1.12/commit?container=tocommit&repo=snap&tag=v2', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Cmd: ['cat', '/greeting'], Env: ['FROM_COMMIT=1'] }) });
    assert.equal(withConfig.status, 201);
    assert.match(JSON.parse(withConfig.text).Id, /^[0-9a-f]{64}$/);
    const v2 = await stack.docker(['run', '--rm', 'snap:v2']);
    assert.equal(v2.stdout, 'committed\n');
    const missing = await stack.request('POST', '/v1.12/commit?container=nothere');
    assert.equal(missing.status, 404);
    assert.equal((await stack.docker(['rm', 'tocommit'])).code, 0);
  });

  test('top, pause and unpause, restart, attach', async () => {
    const id = (await stack.docker(['run', '-d', '--name', 'looper', 'busybox', 'sh', '-c', 'while true; do echo beat; sleep 0.2; done'])).stdout.trim();
    const top = await stack.docker(['top', 'looper']);
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.stdout, /^UID\s+PID\s+PPID/);
    assert.match(top.stdout, /sh -c while true; do echo beat; sleep 0\.2; done/);
    const topArgs = JSON.parse((await stack.request('GET', '/v1.12/containers/looper/top?ps_args=-o%20pid,args')).text);
    assert.deepEqual(topArgs.Titles, ['PID', 'COMMAND']);
    const noPid = await stack.request('GET', '/v1.12/containers/looper/top?ps_args=-o%20args');
    assert.equal(noPid.status, 500);
    assert.equal(noPid.text, "Couldn't find PID field in ps output\n");
    assert.equal((await stack.request('GET', '/v1.3/containers/looper/top')).status, 500);

    assert.equal((await stack.docker(['pause', 'looper'])).code, 0);
    assert.match((await stack.docker(['ps', '--format', '{{.Status}}', '--filter', `id=${id}`])).stdout, /\(Paused\)/);
    assert.equal((await stack.docker(['inspect', '-f', '{{.State.Paused}}', 'looper'])).stdout.trim(), 'true');
    const paused = await stack.docker(['pause', 'looper']);
    assert.notEqual(paused.code, 0);
    assert.match(paused.stderr, /is already paused/);
    const logsBefore = (await stack.docker(['logs', 'looper'])).stdout.length;
    await sleep(600);
    assert.equal((await stack.docker(['logs', 'looper'])).stdout.length, logsBefore, 'a paused container writes nothing');
    assert.equal((await stack.docker(['unpause', 'looper'])).code, 0);
    await sleep(600);
    assert.ok((await stack.docker(['logs', 'looper'])).stdout.length > logsBefore);

    const pidBefore = (await stack.docker(['inspect', '-f', '{{.State.Pid}}', 'looper'])).stdout.trim();
    assert.equal((await stack.docker(['restart', '-t', '1', 'looper'])).code, 0);
    const after = await stack.docker(['inspect', '-f', '{{.State.Running}} {{.State.Pid}}', 'looper']);
    const [running, pidAfter] = after.stdout.trim().split(' ');
    assert.equal(running, 'true');
    assert.notEqual(pidAfter, pidBefore);

    const attached = await stack.docker(['attach', '--no-stdin', 'looper'], { timeoutMs: 1500 });
    assert.match(attached.stdout, /beat\nbeat\n/);
    assert.equal((await stack.docker(['rm', '-f', 'looper'])).code, 0);
    const stopped = await stack.docker(['attach', 'changer']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /You cannot attach to a stopped container/);
  });
});
