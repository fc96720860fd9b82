// Reconciliation after faults (issue 17). The image store's record of which
// container uses which image equals the container records after the image
// store lost calls (frozen, then killed); a start that the runtime's SIGKILL
// interrupted ends adopted or undone, with nothing left behind; a stopped
// container's root filesystem is not mounted, and the operations that need
// it mount it for their while only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { busyboxRootfsTar } from './images-fixtures';
import { mountsBelow, processesMentioning, shortTempDir, sleep, type Stack, startStackWithBusybox, stopStack, vethsOn } from './harness';

/** Mount points below the stack's containers' directory. */
const containerMounts = (stack: Stack): string[] => mountsBelow(path.join(stack.root, 'containers')).filter((m) => m !== path.join(stack.root, 'containers'));

const rootfsOf = (stack: Stack, id: string) => path.join(stack.root, 'containers', id, 'rootfs');
const mounted = (stack: Stack, id: string) => containerMounts(stack).includes(rootfsOf(stack, id));

/** The host ends of veths on the stack's bridge. */
const bridgeVeths = (stack: Stack): number => vethsOn(String(stack.env.STEVEDORE_BRIDGE)).length;

/** The stack's named network namespaces. */
function stackNetns(stack: Stack): string[] {
  const prefix = `sd${createHash('sha256').update(stack.root).digest('hex').slice(0, 6)}-`;
  return fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns').filter((n) => n.startsWith(prefix)) : [];
}

/** Waits until the supervisor has a new process `name` (not `oldPid`) and the API answers `probe` through it. */
async function restarted(stack: Stack, name: string, oldPid: number, probe: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const p = stack.process(name);
    if (p.pid && p.pid !== oldPid && p.state === 'healthy') break;
    assert.ok(Date.now() < deadline, `${name} not back: ${JSON.stringify(p)}`);
    await sleep(50);
  }
  await stack.waitFor(probe, 200, 30_000);
}

/** GET export with its reader paused: `started` once the answer's head arrived, `rest()` reads it all (rejects when it is cut). */
function pausedExport(stack: Stack, id: string): { request: http.ClientRequest; started: Promise<void>; rest(): Promise<Buffer> } {
  const request = http.request({ socketPath: stack.socket, method: 'GET', path: `/v1.12/containers/${id}/export`, agent: false });
  request.on('error', () => undefined);
  const response = new Promise<http.IncomingMessage>((resolve) => request.on('response', (res) => {
    res.pause();
    resolve(res);
  }));
  request.end();
  return {
    request,
    started: response.then(() => undefined),
    rest: () => response.then((res) => new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.complete ? resolve(Buffer.concat(chunks)) : reject(new Error('the export was cut'))));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('the export was cut')));
      res.resume();
    })),
  };
}

/** Polls `check` until it gives true (or the time is up: false). */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}

describe('reconciliation after faults', () => {
  let stack: Stack;
  let work: string;
  before(async () => {
    stack = await startStackWithBusybox();
    work = shortTempDir('recon-');
  });
  after(async () => {
    await stopStack(stack, { allowRestarts: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** A new image of its own (an import: a new ID every time), tagged `name`. */
  async function image(name: string): Promise<string> {
    const r = await stack.docker(['import', busyboxRootfsTar(), name]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().replace(/^sha256:/, '');
  }

  test('image use equals the container records after the image store lost a release and a stop (frozen, then killed)', async () => {
    await image('recon-a:latest');
    await image('recon-b:latest');
    await image('recon-c:latest');
    const removed = (await stack.docker(['create', 'recon-a', 'true'])).stdout.trim();
    const stopped = (await stack.docker(['run', '-d', 'recon-b', 'sleep', '300'])).stdout.trim();
    assert.match(removed, /^[0-9a-f]{64}$/);
    assert.match(stopped, /^[0-9a-f]{64}$/);

    // Frozen, the store takes the runtime's calls and never answers them: the release of `removed` and
    // the end of `stopped` are lost (the calls time out), and the store is then killed before it thaws.
    const store = stack.process('image-store');
    process.kill(store.pid!, 'SIGSTOP');
    try {
      const [rm, stop] = await Promise.all([stack.docker(['rm', removed]), stack.docker(['stop', '-t', '1', stopped])]);
      assert.equal(rm.code, 0, rm.stderr);
      assert.equal(stop.code, 0, stop.stderr);
    } finally {
      process.kill(store.pid!, 'SIGKILL');
    }
    // A create while the store is away: it may fail or succeed, whichever (image use must follow either way).
    const created = await stack.docker(['create', 'recon-c', 'true']);
    await restarted(stack, 'image-store', store.pid!, '/images/json');

    // Once the runtime has told the restarted store its records: `stopped` uses recon-b, and is not running.
    const reconciled = await eventually(async () => {
      const r = await stack.request('DELETE', '/v1.12/images/recon-b');
      assert.equal(r.status, 409, r.text);
      return r.text.includes(`because the container ${stopped.slice(0, 12)} is using it`);
    }, 20_000);
    const last = await stack.request('DELETE', '/v1.12/images/recon-b?force=1');
    assert.ok(reconciled, `recon-b is still recorded as used by a running container: ${last.text}`);
    assert.equal(last.status, 200, 'forced: untagged, its layer kept for the stopped container');
    // recon-a: its only container was removed while the store was frozen.
    const a = await stack.request('DELETE', '/v1.12/images/recon-a');
    assert.equal(a.status, 200, `recon-a is still recorded as used: ${a.text}`);
    // recon-c: refused exactly when the create went through.
    const c = await stack.request('DELETE', '/v1.12/images/recon-c');
    if (created.code === 0) {
      assert.equal(c.status, 409, c.text);
      assert.equal((await stack.docker(['rm', created.stdout.trim()])).code, 0);
    } else assert.equal(c.status, 200, c.text);
    assert.equal((await stack.docker(['rm', stopped])).code, 0);
  });

  test('a restarted image store is sent the runtime\'s account as soon as the runtime reconnects, with no call failing first', async () => {
    const log = path.join(stack.root, 'logs', 'container-runtime.log');
    const reconciliations = () => fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('image use reconciled with the image store')).length;
    const before = reconciliations();
    const store = stack.process('image-store');
    process.kill(store.pid!, 'SIGKILL');
    // Nothing asks the runtime for anything meanwhile (the image list goes to the store alone).
    await restarted(stack, 'image-store', store.pid!, '/images/json');
    assert.ok(await eventually(async () => reconciliations() > before, 10_000), 'the runtime did not send its account to the restarted store');
  });

  test('creates racing the image store\'s restart (and the reconciliation it brings) keep their image use', async () => {
    const made: Array<{ image: string; container?: string }> = [];
    for (let round = 0; round < 3; round++) {
      const names = [0, 1, 2].map((i) => `race-${round}-${i}:latest`);
      for (const n of names) await image(n);
      const store = stack.process('image-store');
      process.kill(store.pid!, 'SIGKILL');
      // Sent while the store is away: they wait for it and reach it as the runtime reconnects and reconciles.
      const creates = await Promise.all(names.map((n) => stack.docker(['create', n, 'true'])));
      names.forEach((n, i) => made.push({ image: n, container: creates[i].code === 0 ? creates[i].stdout.trim() : undefined }));
      await restarted(stack, 'image-store', store.pid!, '/images/json');
    }
    await sleep(1000); // the last reconciliation is done
    for (const m of made) {
      const r = await stack.request('DELETE', `/v1.12/images/${m.image}`);
      if (m.container) assert.equal(r.status, 409, `${m.image} is used by ${m.container}: ${r.text}`);
      else assert.equal(r.status, 200, r.text);
    }
    const ids = made.map((m) => m.container).filter((c): c is string => Boolean(c));
    if (ids.length) assert.equal((await stack.docker(['rm', ...ids])).code, 0);
  });

  test('SIGKILL of container-runtime in the middle of docker start: each container ends running (adopted) or stopped with nothing left', async () => {
    // Kill points: the root filesystem just mounted; the monitor just made; then fixed delays after the request.
    const points: Array<'mounted' | 'monitor' | number> = ['mounted', 'monitor', 'monitor', 0, 40, 80, 150];
    const outcomes: string[] = [];
    for (const point of points) {
      const id = (await stack.docker(['create', 'busybox', 'sleep', '300'])).stdout.trim();
      assert.match(id, /^[0-9a-f]{64}$/);
      const runtime = stack.process('container-runtime');
      const state = path.join(stack.root, 'run', 's', id.slice(0, 12));
      const start = stack.request('POST', `/v1.12/containers/${id}/start`, { headers: { 'Content-Type': 'application/json' }, body: '{}' }).catch(() => undefined);
      const t0 = Date.now();
      for (;;) {
        if (typeof point === 'number' ? Date.now() - t0 >= point : point === 'mounted' ? mounted(stack, id) : fs.existsSync(path.join(state, 'attach.sock'))) break;
        if (Date.now() - t0 > 10_000) break;
        await new Promise((r) => setImmediate(r));
      }
      process.kill(runtime.pid!, 'SIGKILL');
      await start;
      await restarted(stack, 'container-runtime', runtime.pid!, '/containers/json');

      const [running, pid] = (await stack.docker(['inspect', '-f', '{{.State.Running}} {{.State.Pid}}', id])).stdout.trim().split(' ');
      // What the runtime's log says it did with it (for the record: which paths the kill points reached).
      const said = fs.readFileSync(path.join(stack.root, 'logs', 'container-runtime.log'), 'utf8').split('\n').filter((l) => l.includes(id)).map((l) => JSON.parse(l).msg as string);
      const how = said.find((m) => /^(adopted|undid|unmounted)/.test(m)) ?? 'nothing to recover';
      outcomes.push(`${point}: ${running === 'true' ? 'running' : 'stopped'} (${how})`);
      if (running === 'true') {
        assert.ok(Number(pid) > 0 && fs.existsSync(`/proc/${pid}`), `${point}: recorded running with pid ${pid}, which is not alive`);
        assert.ok(mounted(stack, id), `${point}: running without its root filesystem`);
      } else {
        assert.ok(!mounted(stack, id), `${point}: not running, and its root filesystem is still mounted`);
        const left = processesMentioning(id);
        assert.deepEqual(left, [], `${point}: not running, and processes of it are left`);
        assert.ok(!fs.existsSync(path.join(stack.root, 'run', 'runtime', id)), `${point}: not running, and the OCI runtime still has it`);
        assert.ok(!stackNetns(stack).some((n) => n.endsWith(id.slice(0, 12))), `${point}: not running, and its network namespace is left`);
      }
      // Veths: exactly one per running container (a freed namespace's veth goes with it, a moment later).
      const runningCount = (await stack.docker(['ps', '-q'])).stdout.trim().split('\n').filter(Boolean).length;
      assert.ok(await eventually(async () => bridgeVeths(stack) === runningCount, 3000), `${point}: ${bridgeVeths(stack)} veths on the bridge for ${runningCount} running containers`);
      // And it goes on as usual: it starts (again), stops, and leaves nothing.
      const again = await stack.docker(['start', id]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await stack.docker(['inspect', '-f', '{{.State.Running}}', id])).stdout.trim(), 'true');
      assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
      assert.ok(!mounted(stack, id));
    }
    process.stderr.write(`interrupted starts: ${outcomes.join(', ')}\n`);
    assert.deepEqual(containerMounts(stack), []);
    assert.ok(await eventually(async () => bridgeVeths(stack) === 0, 3000));
    assert.deepEqual(stackNetns(stack), []);
  });

  test('a stopped container has no root filesystem mounted; cp, export, diff and commit of it (at once too) work and leave none', async () => {
    const id = (await stack.docker(['run', '-d', 'busybox', 'sh', '-c', 'echo hello > /greeting; sleep 300'])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.ok(mounted(stack, id), 'mounted while it runs');
    assert.ok(await eventually(async () => (await stack.request('GET', `/v1.12/containers/${id}/archive?path=/greeting`)).status === 200, 5000));
    assert.equal((await stack.docker(['stop', '-t', '1', id])).code, 0);
    assert.ok(!mounted(stack, id), 'unmounted once it stopped');

    const out = path.join(work, 'greeting');
    const cp = await stack.docker(['cp', `${id}:/greeting`, out]);
    assert.equal(cp.code, 0, cp.stderr);
    assert.equal(fs.readFileSync(out, 'utf8'), 'hello\n');
    // The client may have read the archive's last bytes a moment before the runtime unmounts.
    assert.ok(await eventually(async () => !mounted(stack, id), 5000), 'cp leaves no mount');
    const file = path.join(work, 'export.tar');
    const exp = await stack.docker(['export', '-o', file, id]);
    assert.equal(exp.code, 0, exp.stderr);
    assert.ok(execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').includes('greeting'));
    assert.ok(await eventually(async () => !mounted(stack, id), 5000), 'export leaves no mount');
    const diff = await stack.docker(['diff', id]);
    assert.equal(diff.code, 0, diff.stderr);
    assert.ok(diff.stdout.split('\n').includes('A /greeting'), diff.stdout);
    const commit = await stack.docker(['commit', id, 'recon-snap:v1']);
    assert.equal(commit.code, 0, commit.stderr);
    assert.ok(await eventually(async () => !mounted(stack, id), 5000), 'diff and commit leave no mount');

    // Several at once: each holds the root filesystem for its own while; the last one unmounts it.
    const archives = Array.from({ length: 6 }, (_, i) => path.join(work, `at-once-${i}.tar`));
    const copies = await Promise.all([
      ...archives.slice(0, 3).map((f) => stack.docker(['export', '-o', f, id])),
      ...archives.slice(3).map((f, i) => stack.docker(['cp', `${id}:/bin`, path.join(work, `bin-${i}`)])),
    ]);
    for (const r of copies) assert.equal(r.code, 0, r.stderr);
    for (const f of archives.slice(0, 3)) assert.ok(execFileSync('tar', ['-tf', f], { encoding: 'utf8' }).split('\n').includes('bin/busybox'), `${f} is whole`);
    for (let i = 0; i < 3; i++) assert.ok(fs.existsSync(path.join(work, `bin-${i}`, 'busybox')));
    assert.ok(await eventually(async () => !mounted(stack, id), 5000), 'copies at once leave no mount');

    // It still starts (mounted again while it runs).
    assert.equal((await stack.docker(['start', id])).code, 0);
    assert.ok(mounted(stack, id), 'mounted again while it runs');
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
    assert.equal((await stack.docker(['rmi', 'recon-snap:v1'])).code, 0);
    assert.ok(!mounted(stack, id));
  });

  test('two exports of one stopped container at once: the one that mounted it ending first does not unmount it under the other', async () => {
    const made = await stack.docker(['run', '--name', 'twice', 'busybox', 'dd', 'if=/dev/zero', 'of=/big', 'bs=1M', 'count=64']);
    assert.equal(made.code, 0, made.stderr);
    const cid = (await stack.docker(['inspect', '-f', '{{.Id}}', 'twice'])).stdout.trim();
    // Both stall in /big (the first entries of the tar), their readers paused.
    const first = pausedExport(stack, cid);
    assert.ok(await eventually(async () => mounted(stack, cid), 10_000), 'the first export mounted the root filesystem');
    const second = pausedExport(stack, cid);
    await second.started;
    await sleep(500);
    first.request.destroy();
    await sleep(1000);
    assert.ok(mounted(stack, cid), 'the second export still holds the root filesystem');
    const tarFile = path.join(work, 'second.tar');
    fs.writeFileSync(tarFile, await second.rest());
    const names = execFileSync('tar', ['-tf', tarFile], { encoding: 'utf8' }).split('\n');
    assert.ok(names.includes('big') && names.includes('bin/busybox') && names.includes('etc/passwd'), 'the second export is whole');
    assert.ok(await eventually(async () => !mounted(stack, cid), 5000), 'unmounted after the last one');
    assert.equal((await stack.docker(['rm', 'twice'])).code, 0);
  });

  test('SIGKILL of container-runtime during an export of a stopped container: no mount is left after its restart', async () => {
    const made = await stack.docker(['run', '--name', 'big', 'busybox', 'dd', 'if=/dev/zero', 'of=/big', 'bs=1M', 'count=64']);
    assert.equal(made.code, 0, made.stderr);
    const cid = (await stack.docker(['inspect', '-f', '{{.Id}}', 'big'])).stdout.trim();
    assert.ok(!mounted(stack, cid));
    // An export nobody reads: the runtime holds the root filesystem mounted while its stream waits.
    const req = http.request({ socketPath: stack.socket, method: 'GET', path: `/v1.12/containers/${cid}/export`, agent: false });
    req.on('response', (res) => res.pause());
    req.on('error', () => undefined);
    req.end();
    assert.ok(await eventually(async () => mounted(stack, cid), 10_000), 'the export mounted the root filesystem');
    const runtime = stack.process('container-runtime');
    process.kill(runtime.pid!, 'SIGKILL');
    req.destroy();
    await restarted(stack, 'container-runtime', runtime.pid!, '/containers/json');
    assert.ok(!mounted(stack, cid), 'a stopped container\'s root filesystem is unmounted at the runtime\'s start');
    assert.equal((await stack.docker(['rm', 'big'])).code, 0);
  });
});
