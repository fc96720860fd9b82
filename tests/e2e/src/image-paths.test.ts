// Paths an image or a container's processes choose are resolved inside the
// container's root, never on the host: the user database (/etc/passwd a link
// to a host file, a FIFO, a device), WorkingDir (climbing with `..`, through
// an image's link to a host directory), volumes at a path that is a link to
// a host directory, and docker cp against a container that swaps a
// directory for a link to `/` while the copies run (CVE-2018-15664): the
// container is frozen for each copy and thawed after, also when the client
// goes away mid-stream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { removedAtExit, shortTempDir, sleep, type Stack, startStackWithBusybox, stopStack } from './harness';

/** The freezer state (FROZEN, THAWED) of a container's cgroup, or undefined where this host keeps it elsewhere. */
function freezerState(id: string): string | undefined {
  for (const file of [`/sys/fs/cgroup/freezer/stevedore/${id}/freezer.state`, `/sys/fs/cgroup/stevedore/${id}/cgroup.freeze`]) {
    try {
      const s = fs.readFileSync(file, 'utf8').trim();
      return s === '1' ? 'FROZEN' : s === '0' ? 'THAWED' : s;
    } catch {
      // not this layout
    }
  }
  return undefined;
}

describe('paths an image chose, resolved inside the container', () => {
  let stack: Stack;
  let work: string;
  /** Host directories outside /tmp (an image's /tmp link to one must not loop inside the container). */
  const outside: string[] = [];
  const hostDirOutsideTmp = (name: string): string => {
    const dir = `/var/tmp/sd-${name}-${process.pid}`;
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir);
    outside.push(removedAtExit(dir));
    return dir;
  };

  before(async () => {
    stack = await startStackWithBusybox();
    work = shortTempDir('imgpaths-');
  });
  after(async () => {
    await stopStack(stack);
    fs.rmSync(work, { recursive: true, force: true });
    for (const d of outside) fs.rmSync(d, { recursive: true, force: true });
  });

  /** An image made from busybox by a shell script, committed with `config` merged over the container's. */
  async function imageFrom(repo: string, script: string, config: object = {}): Promise<void> {
    const made = await stack.docker(['run', '--name', `make-${repo}`, 'busybox', 'sh', '-c', script]);
    assert.equal(made.code, 0, made.stderr);
    const c = await stack.request('POST', `/v1.12/commit?container=make-${repo}&repo=${repo}`, { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(config) });
    assert.equal(c.status, 201, c.text);
    assert.equal((await stack.docker(['rm', `make-${repo}`])).code, 0);
  }

  test('User: /etc/passwd linking to a host file is read inside the root, never on the host', async () => {
    const evilDir = path.join(work, 'evil');
    fs.mkdirSync(evilDir);
    const hostPasswd = path.join(evilDir, 'passwd');
    fs.writeFileSync(hostPasswd, 'evil:x:0:0::/:/bin/sh\n');
    // An absolute link; inside the image, the same path holds a passwd of its own.
    await imageFrom('passwd-abs', `mkdir -p ${evilDir} && echo 'inside:x:4321:4321::/:/bin/sh' > ${hostPasswd} && rm /etc/passwd && ln -s ${hostPasswd} /etc/passwd`);
    // A relative link climbing out of the root (leading nowhere inside it).
    await imageFrom('passwd-rel', `rm /etc/passwd && ln -s ${'../'.repeat(12)}${hostPasswd.slice(1)} /etc/passwd`);

    for (const image of ['passwd-abs', 'passwd-rel']) {
      const r = await stack.docker(['run', '--rm', '--user', 'evil', image, 'id', '-u']);
      assert.notEqual(r.code, 0, `${image}: the host's passwd was read (${r.stdout})`);
      assert.match(r.stderr, /Unable to find user evil: no matching entries in passwd file/, image);
    }
    const inside = await stack.docker(['run', '--rm', '--user', 'inside', 'passwd-abs', 'id', '-u']);
    assert.equal(inside.code, 0, inside.stderr);
    assert.equal(inside.stdout, '4321\n', 'the link is followed inside the root');
    // No passwd inside the root: root and numeric users still run.
    const numeric = await stack.docker(['run', '--rm', '--user', '99', 'passwd-rel', 'id', '-u']);
    assert.equal(numeric.stdout, '99\n', numeric.stderr);
  });

  test('User: a FIFO or a device as /etc/passwd or /etc/group fails the start at once, the runtime answering meanwhile', async () => {
    await imageFrom('passwd-fifo', 'rm /etc/passwd && mkfifo /etc/passwd');
    await imageFrom('group-dev', 'rm /etc/group && mknod /etc/group c 1 5');
    const started = Date.now();
    const run = stack.docker(['run', '--rm', 'passwd-fifo', 'true'], { timeoutMs: 20_000 });
    await sleep(300);
    const psStarted = Date.now();
    const ps = await stack.docker(['ps'], { timeoutMs: 10_000 });
    assert.equal(ps.code, 0, ps.stderr);
    assert.ok(Date.now() - psStarted < 5000, `docker ps took ${Date.now() - psStarted} ms`);
    const r = await run;
    assert.ok(Date.now() - started < 10_000, `the failed start took ${Date.now() - started} ms`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Cannot start container [0-9a-f]{64}: \/etc\/passwd is not a regular file/);

    // Through the API: a start failure's status, and the container recorded as exited (126, as other start failures).
    assert.equal((await stack.docker(['create', '--name', 'fifo-start', 'passwd-fifo', 'true'])).code, 0);
    const start = await stack.request('POST', '/v1.12/containers/fifo-start/start');
    assert.equal(start.status, 500);
    assert.match(start.text, /\/etc\/passwd is not a regular file/);
    assert.equal((await stack.docker(['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', 'fifo-start'])).stdout.trim(), 'false 126');
    assert.equal((await stack.docker(['rm', 'fifo-start'])).code, 0);

    const dev = await stack.docker(['run', '--rm', 'group-dev', 'true'], { timeoutMs: 20_000 });
    assert.notEqual(dev.code, 0);
    assert.match(dev.stderr, /\/etc\/group is not a regular file/);
    const ps2 = await stack.docker(['ps', '-a', '--format', '{{.Image}} {{.Status}}']);
    assert.doesNotMatch(ps2.stdout, /passwd-fifo|group-dev/, 'run --rm removed the containers that never started');
  });

  test('WorkingDir: `..` stays in the root, links lead inside it, nothing is made on the host', async () => {
    const name = `sd-wd-${process.pid}`;
    const onHost = removedAtExit(`/tmp/${name}`);
    const climb = '../'.repeat(12);
    // From the command line, and from the image's config.
    const cli = await stack.docker(['run', '--rm', '-w', `${climb}tmp/${name}/cli`, 'busybox', 'pwd']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, `/tmp/${name}/cli\n`);
    await imageFrom('wd-climb', 'true', { WorkingDir: `${climb}tmp/${name}/image` });
    const img = await stack.docker(['run', '--rm', 'wd-climb', 'sh', '-c', 'pwd; ls -ld . | cut -c1-10']);
    assert.equal(img.code, 0, img.stderr);
    assert.equal(img.stdout, `/tmp/${name}/image\ndrwxr-xr-x\n`);
    assert.ok(!fs.existsSync(onHost), `${onHost} was made on the host`);

    // The image's /tmp a link to a host directory: the directory the link names inside the image is used.
    const hostDir = hostDirOutsideTmp('wdhost');
    fs.writeFileSync(path.join(hostDir, 'host-marker'), 'host\n');
    await imageFrom('tmp-link', `rm -rf /tmp && mkdir -p ${hostDir} && ln -s ${hostDir} /tmp`);
    const linked = await stack.docker(['run', '--rm', '-w', `${climb}tmp/x`, 'tmp-link', 'sh', '-c', 'pwd; ls -A /tmp/x; ls -A /tmp']);
    assert.equal(linked.code, 0, linked.stderr);
    assert.equal(linked.stdout, `${hostDir}/x\nx\n`, 'the working directory was made inside the root, empty');
    // The link leads nowhere inside the root: the start fails, saying why.
    await imageFrom('tmp-dangling', `rm -rf /tmp && ln -s ${hostDir} /tmp`);
    const dangling = await stack.docker(['run', '--rm', '-w', '/tmp/x', 'tmp-dangling', 'pwd']);
    assert.notEqual(dangling.code, 0);
    assert.match(dangling.stderr, /Cannot mkdir: \/tmp\/x: \/tmp is not a directory/);
    assert.deepEqual(fs.readdirSync(hostDir), ['host-marker'], 'nothing was made in the host directory');
    const file = await stack.docker(['run', '--rm', '-w', '/bin/sh', 'busybox', 'pwd']);
    assert.match(file.stderr, /Cannot mkdir: \/bin\/sh is not a directory/);
  });

  test('VOLUME at a path that links to a host directory: made and filled inside the root, nothing on the host', async () => {
    const hostDir = hostDirOutsideTmp('volhost');
    fs.writeFileSync(path.join(hostDir, 'host-secret'), 'host\n');
    await imageFrom('data-link', `mkdir -p ${hostDir} && echo image > ${hostDir}/image-file && ln -s ${hostDir} /data`, { Volumes: { '/data': {} } });
    const r = await stack.docker(['run', '--name', 'vol-linked', 'data-link', 'sh', '-c', 'ls -A /data; echo written > /data/written']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'image-file\n', 'the volume has the image\'s content, not the host directory\'s');
    const info = JSON.parse((await stack.request('GET', '/v1.12/containers/vol-linked/json')).text);
    const volume = info.Volumes['/data'];
    assert.equal(path.dirname(volume), path.join(stack.root, 'volumes'));
    assert.deepEqual(fs.readdirSync(volume).sort(), ['image-file', 'written']);
    // `-v` at a link leading nowhere inside the root.
    await imageFrom('data-dangling', `ln -s ${hostDir} /data`);
    const dangling = await stack.docker(['run', '--rm', '-v', '/data', 'data-dangling', 'sh', '-c', 'echo x > /data/y']);
    const volumes = fs.readdirSync(path.join(stack.root, 'volumes'));
    for (const v of volumes) assert.ok(!fs.existsSync(path.join(stack.root, 'volumes', v, 'host-secret')), `a volume was filled from the host (${dangling.stderr})`);
    assert.deepEqual(fs.readdirSync(hostDir), ['host-secret'], 'nothing was made in the host directory');
    assert.equal((await stack.docker(['rm', '-v', 'vol-linked'])).code, 0);
  });

  test('cp out of and into a container swapping a directory for a link to / never reads or writes the host', async (t) => {
    // The host file the swap would expose: /d/<hostDir>/secret inside the container is <hostDir>/secret on the host when /d leads to /.
    const hostDir = shortTempDir('sd-cprace-');
    const secret = path.join(hostDir, 'secret');
    fs.writeFileSync(secret, 'HOSTSECRET-0123456789\n');
    const inside = 'inside-file-abcdefghi\n'; // the same length: a host file read in its place would pass as it
    const script = `mkdir -p /d${hostDir} && printf '${inside.trim()}\\n' > /d${secret} && n=0 && while :; do n=$((n+1)); echo $n > /count; mv /d /d.tmp; ln -s / /d; rm /d; mv /d.tmp /d; done`;
    const id = (await stack.docker(['run', '-d', '--name', 'racer', 'busybox', 'sh', '-c', script])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const out = path.join(work, 'race-out');
    fs.mkdirSync(out);

    let copied = 0;
    let sawInside = 0;
    const copyOut = async (i: number) => {
      const source = i % 10 === 0 ? 'racer:/d' : `racer:/d${secret}`;
      const r = await stack.docker(['cp', source, '-'], { timeoutMs: 30_000 });
      assert.ok(!r.stdout.includes('HOSTSECRET'), `copy ${i} of ${source} read the host's file`);
      // A copy made while /d was a link or away finds nothing: refused, never the host.
      if (r.code !== 0) assert.match(r.stderr, /Could not find the file|No such container:path/, r.stderr);
      else {
        copied++;
        if (r.stdout.includes(inside)) sawInside++;
      }
    };
    const intoFile = path.join(work, 'planted');
    fs.writeFileSync(intoFile, 'planted\n');
    const copyIn = async (i: number) => {
      const r = await stack.docker(['cp', intoFile, `racer:/d${hostDir}/`], { timeoutMs: 30_000 });
      // The target away or a link when the CLI looked (it says `no such directory`), or when the copy came.
      if (r.code !== 0) assert.match(r.stderr, /Could not find the file|No such container:path|no such directory|not a directory/, `copy in ${i}: ${r.stderr}`);
    };
    const started = Date.now();
    for (let i = 0; i < 200; i += 4) await Promise.all([copyOut(i), copyOut(i + 1), copyOut(i + 2), copyOut(i + 3), i < 160 ? copyIn(i / 4) : undefined]);
    const elapsed = Date.now() - started;
    t.diagnostic(`200 copies out (${copied} found the file, ${sawInside} with the container's content) and 40 in, in ${elapsed} ms`);
    assert.deepEqual(fs.readdirSync(hostDir), ['secret'], 'nothing was written on the host');
    assert.equal(fs.readFileSync(secret, 'utf8'), 'HOSTSECRET-0123456789\n');
    assert.ok(copied >= 10 && sawInside >= 10, `most copies found the container's file (${copied} copied, ${sawInside} with it, in ${elapsed} ms)`);

    // Export and commit walk the container's files by name too: frozen the same way.
    for (let i = 0; i < 6; i++) {
      const exported = await stack.request('GET', '/v1.12/containers/racer/export');
      assert.equal(exported.status, 200);
      assert.ok(!exported.body.includes('HOSTSECRET'), `export ${i} read the host's file`);
    }
    for (let i = 0; i < 3; i++) {
      const committed = await stack.request('POST', `/v1.12/commit?container=racer&repo=race-commit&tag=c${i}`);
      assert.equal(committed.status, 201, committed.text);
      const saved = await stack.request('GET', `/v1.12/images/race-commit:c${i}/get`);
      assert.equal(saved.status, 200);
      assert.ok(!saved.body.includes('HOSTSECRET'), `commit ${i} took the host's file`);
      assert.equal((await stack.docker(['rmi', `race-commit:c${i}`])).code, 0);
    }

    // Thawed after the copies: the loop goes on.
    // The file's content follows the tar's 512-byte header; a copy may find it truncated for the next write.
    const count = async () => {
      for (let i = 0; i < 20; i++) {
        const n = parseInt((await stack.docker(['cp', 'racer:/count', '-'])).stdout.slice(512), 10);
        if (Number.isFinite(n)) return n;
      }
      return NaN;
    };
    const first = await count();
    await sleep(500);
    const second = await count();
    assert.ok(second > first, `the container runs between copies (${first} then ${second})`);
    assert.equal(freezerState(id), 'THAWED');
    const inspect = JSON.parse((await stack.request('GET', '/v1.12/containers/racer/json')).text);
    assert.equal(inspect.State.Paused, false, 'a copy does not show as a pause');
    assert.equal((await stack.docker(['rm', '-f', 'racer'])).code, 0);
  });

  test('a copy out of a running container freezes it while it streams; a client gone mid-stream, pause and unpause meanwhile', async () => {
    const run = await stack.docker(['run', '-d', '--name', 'big', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=64 2>/dev/null; echo ready; while :; do sleep 1; done']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    assert.notEqual(freezerState(id), undefined, 'the container has a freezer (cgroup v1 or v2)');
    for (let i = 0; i < 100 && !(await stack.docker(['logs', 'big'])).stdout.includes('ready'); i++) await sleep(100);
    assert.equal(freezerState(id), 'THAWED');
    /** A copy of /big that has begun to stream; the client reads no further until it goes away. */
    const openCopy = () =>
      new Promise<() => void>((resolve, reject) => {
        const req = http.request({ socketPath: stack.socket, path: '/v1.12/containers/big/archive?path=/big', agent: false }, (res) => {
          if (res.statusCode !== 200) return reject(new Error(`GET archive answered ${res.statusCode}`));
          res.once('data', () => {
            res.pause();
            resolve(() => req.destroy());
          });
        });
        req.on('error', () => undefined); // the client going away
        req.end();
      });
    const settles = async (want: string) => {
      for (const t0 = Date.now(); freezerState(id) !== want && Date.now() - t0 < 5000; ) await sleep(50);
      return freezerState(id);
    };
    const paused = async () => JSON.parse((await stack.request('GET', '/v1.12/containers/big/json')).text).State.Paused;

    let goAway = await openCopy();
    assert.equal(freezerState(id), 'FROZEN', 'the container is frozen while the copy streams');
    assert.equal(await paused(), false, 'a copy is not a pause');
    goAway();
    assert.equal(await settles('THAWED'), 'THAWED', 'thawed once the client went away');

    // docker pause during a copy: the container stays paused after it; unpause during a copy of a paused container thaws after it.
    goAway = await openCopy();
    assert.equal((await stack.docker(['pause', 'big'])).code, 0);
    goAway();
    await sleep(500);
    assert.equal(freezerState(id), 'FROZEN', 'paused during the copy: still frozen after it');
    assert.equal(await paused(), true);
    goAway = await openCopy();
    assert.equal((await stack.docker(['unpause', 'big'])).code, 0);
    assert.equal(await paused(), false);
    assert.equal(freezerState(id), 'FROZEN', 'unpaused during a copy: frozen until it ends');
    goAway();
    assert.equal(await settles('THAWED'), 'THAWED', 'thawed when the copy ended');
    const stopped = Date.now();
    assert.equal((await stack.docker(['stop', '-t', '1', 'big'])).code, 0);
    assert.ok(Date.now() - stopped < 5000, 'the thawed container stops at once');

    // A stopped container is copied unfrozen: it may not start while a copy of it streams.
    goAway = await openCopy();
    const refusedStart = await stack.docker(['start', 'big']);
    assert.notEqual(refusedStart.code, 0);
    assert.match(refusedStart.stderr, /a copy of its files is in progress/);
    assert.equal(JSON.parse((await stack.request('GET', '/v1.12/containers/big/json')).text).State.Running, false);
    goAway();
    let started = await stack.docker(['start', 'big']);
    for (let i = 0; i < 50 && started.code !== 0; i++) {
      await sleep(100); // the copy's end reaches the runtime a moment after the client went
      started = await stack.docker(['start', 'big']);
    }
    assert.equal(started.code, 0, started.stderr);
    assert.equal((await stack.docker(['rm', '-f', 'big'])).code, 0);
  });
});

describe('a copy that the runtime does not finish', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
  });
  // The runtime is killed on purpose; `down` during a copy must still leave nothing running (stopStack checks).
  after(() => stopStack(stack, { allowRestarts: true }));

  /** A copy of /big from `name` that has begun to stream and is never read further. */
  const openCopy = (name: string) =>
    new Promise<() => void>((resolve, reject) => {
      const req = http.request({ socketPath: stack.socket, path: `/v1.12/containers/${name}/archive?path=/big`, agent: false }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`GET archive answered ${res.statusCode}`));
        res.once('data', () => {
          res.pause();
          resolve(() => req.destroy());
        });
      });
      req.on('error', () => undefined);
      req.end();
    });

  test('the runtime killed during a copy thaws the container when it comes back; down during a copy stops it', async () => {
    const run = await stack.docker(['run', '-d', '--name', 'big', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=64 2>/dev/null; echo ready; while :; do sleep 1; done']);
    const id = run.stdout.trim();
    assert.notEqual(freezerState(id), undefined, 'the container has a freezer (cgroup v1 or v2)');
    for (let i = 0; i < 100 && !(await stack.docker(['logs', 'big'])).stdout.includes('ready'); i++) await sleep(100);
    const goAway = await openCopy('big');
    assert.equal(freezerState(id), 'FROZEN');
    const before = stack.process('container-runtime');
    process.kill(before.pid!, 'SIGKILL');
    goAway();
    await stack.waitFor('/containers/json', 200, 20_000);
    assert.notEqual(stack.process('container-runtime').pid, before.pid);
    assert.equal(freezerState(id), 'THAWED', 'the restarted runtime thawed what a copy had frozen');
    assert.equal((await stack.docker(['inspect', '-f', '{{.State.Running}} {{.State.Paused}}', 'big'])).stdout.trim(), 'true false');
    // A copy still streaming when the stack goes down: the container is thawed and stopped with the rest.
    await openCopy('big');
    assert.equal(freezerState(id), 'FROZEN');
  });
});
