// Containers through the real docker CLI: run in the foreground and
// detached, exit codes, stdin, a TTY, the user, environment and working
// directory, memory limits, ps, logs, inspect, stop, kill, wait, rm; and the
// per-version shapes and framing through raw HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { demux, mountsBelow, processesMentioning, rssKiB, runCommand, sleep, type Stack, startStackWithBusybox, stopStack } from './harness';

describe('containers', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
  });
  after(() => stopStack(stack));

  test('docker run in the foreground passes output and the exit code through', async () => {
    const hello = await stack.docker(['run', 'busybox', 'echo', 'hello']);
    assert.equal(hello.code, 0, hello.stderr);
    assert.equal(hello.stdout, 'hello\n');
    const three = await stack.docker(['run', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(three.code, 3);
    assert.equal(three.stdout, 'out\n');
    assert.equal(three.stderr, 'err\n');
  });

  test('-i with piped stdin, --rm, --name, -e, -w, -u', async () => {
    const piped = await stack.docker(['run', '-i', '--rm', 'busybox', 'sh', '-c', 'tr a-z A-Z'], { input: 'shout\n' });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'SHOUT\n');
    // --rm: the CLI removes the container and waits for `destroy`; an event
    // ahead of the DELETE answer would make it cancel the DELETE and complain.
    const before = (await stack.docker(['ps', '-a', '-q'])).stdout;
    for (let i = 0; i < 8; i++) {
      const quick = await stack.docker(['run', '--rm', 'busybox', 'true']);
      assert.equal(quick.code, 0);
      assert.equal(quick.stderr, '');
    }
    assert.equal((await stack.docker(['ps', '-a', '-q'])).stdout, before);
    // A start that fails still ends a --rm run (the CLI waits for `die`), and removes the container.
    const missing = await stack.docker(['run', '--rm', 'busybox', 'nosuchcmd'], { timeoutMs: 20_000 });
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /executable file not found in \$PATH/);
    assert.equal((await stack.docker(['ps', '-a', '-q'])).stdout, before);
    const env = await stack.docker(['run', '--name', 'envy', '-e', 'FOO=bar', '-w', '/tmp/work', '-u', 'nobody', 'busybox', 'sh', '-c', 'echo $FOO; pwd; id -u; id -g; echo $HOME; cat /etc/hostname']);
    assert.equal(env.code, 0, env.stderr);
    const [foo, pwd, uid, gid, home, hostname] = env.stdout.trim().split('\n');
    assert.deepEqual([foo, pwd, uid, gid, home], ['bar', '/tmp/work', '65534', '65534', '/nonexistent']);
    const id = (await stack.docker(['inspect', '-f', '{{.Id}}', 'envy'])).stdout.trim();
    assert.equal(hostname, id.slice(0, 12));
    const names = (await stack.docker(['ps', '-a', '--format', '{{.Names}}'])).stdout;
    assert.match(names, /^envy$/m);
    assert.equal((await stack.docker(['rm', 'envy'])).code, 0);
    const rmd = await stack.docker(['ps', '-a', '-q', '--no-trunc']);
    assert.ok(!rmd.stdout.includes(id));
  });

  test('-t runs under a pty', async () => {
    const r = await runCommand('script', ['-qec', 'docker run -t --rm busybox sh -c "tty; echo TERM=$TERM"', '/dev/null'], {
      env: { ...process.env, DOCKER_HOST: stack.dockerHost, DOCKER_CONFIG: stack.dockerConfig },
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\/dev\/pts\/\d+\r*\n/);
    assert.match(r.stdout, /TERM=xterm/);
  });

  test('-m sets the memory limit; bad limits and bad input are refused with Docker\'s codes', async () => {
    const limit = await stack.docker(['run', '--rm', '-m', '8m', 'busybox', 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes']);
    assert.equal(limit.code, 0, limit.stderr);
    assert.equal(limit.stdout.trim(), String(8 * 1024 * 1024));
    const tiny = await stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'busybox', Cmd: ['true'], Memory: 1000 }) });
    assert.equal(tiny.status, 500);
    assert.equal(tiny.text, 'Minimum memory limit allowed is 512k\n');
    const negative = await stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'busybox', Cmd: ['true'], Memory: -5 }) });
    assert.equal(negative.status, 500);
    const badJson = await stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: '{"Image": ' });
    assert.equal(badJson.status, 400);
    const noImage = await stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'nothere', Cmd: ['true'] }) });
    assert.equal(noImage.status, 404);
    assert.equal(noImage.text, 'No such image: nothere (tag: latest)\n');
    const noCmd = await stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'busybox' }) });
    assert.equal(noCmd.status, 500);
    assert.equal(noCmd.text, 'No command specified\n');
    const badName = await stack.request('POST', '/v1.12/containers/create?name=bad%20name', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'busybox', Cmd: ['true'] }) });
    assert.equal(badName.status, 500);
    assert.match(badName.text, /Invalid container name/);
    assert.equal((await stack.docker(['create', '--name', 'twice', 'busybox', 'true'])).code, 0);
    const dup = await stack.docker(['create', '--name', 'twice', 'busybox', 'true']);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /Conflict, The name twice is already assigned to [0-9a-f]{12}/);
    const missingCmd = await stack.docker(['run', 'busybox', 'nosuchcommand']);
    assert.equal(missingCmd.code, 127);
    assert.match(missingCmd.stderr, /executable file not found/);
    const badUser = await stack.docker(['run', '-u', 'nosuchuser', 'busybox', 'true']);
    assert.notEqual(badUser.code, 0);
    assert.match(badUser.stderr, /Unable to find user nosuchuser/);
    const unknown = await stack.request('GET', '/v1.12/containers/nothere/json');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.text, 'No such container: nothere\n');
    const waitUnknown = await stack.request('POST', '/v1.12/containers/nothere/wait');
    assert.equal(waitUnknown.status, 500);
    assert.equal((await stack.request('GET', '/_ping')).status, 200);
  });

  test('-d, ps, logs, logs -f, inspect, stop, kill -s, wait, rm and rm -f', async () => {
    const d = await stack.docker(['run', '-d', '--name', 'ticker', 'busybox', 'sh', '-c', 'trap "echo got-usr1" USR1; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done']);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    await sleep(600);
    const ps = await stack.docker(['ps', '--format', '{{.ID}} {{.Names}} {{.Status}}']);
    assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} ticker Up `, 'm'));
    const sized = JSON.parse((await stack.request('GET', '/v1.12/containers/json?size=1')).text).find((c: any) => c.Id === id);
    const imageSize = JSON.parse((await stack.request('GET', '/v1.12/images/busybox/json')).text).VirtualSize;
    assert.equal(sized.SizeRootFs, sized.SizeRw + imageSize);
    const psSize = await stack.docker(['ps', '-s', '--format', '{{.Size}}']);
    assert.match(psSize.stdout, /virtual \d/);
    const psq = await stack.docker(['ps', '-q']);
    assert.ok(psq.stdout.includes(id.slice(0, 12)));
    const logs = await stack.docker(['logs', 'ticker']);
    assert.match(logs.stdout, /^tick 0\ntick 1\n/);
    const running = await stack.docker(['inspect', '-f', '{{.State.Running}} {{.State.Pid}}', 'ticker']);
    assert.match(running.stdout, /^true [1-9]\d*\n$/);
    assert.equal((await stack.docker(['kill', '-s', 'USR1', 'ticker'])).code, 0);
    await sleep(400);
    assert.match((await stack.docker(['logs', 'ticker'])).stdout, /got-usr1/);
    const rmRunning = await stack.docker(['rm', 'ticker']);
    assert.notEqual(rmRunning.code, 0);
    assert.match(rmRunning.stderr, /Impossible to remove a running container, please stop it first or use -f/);
    assert.equal((await stack.request('DELETE', `/v1.12/containers/${id}`)).status, 406);
    const follow = stack.docker(['logs', '-f', 'ticker'], { timeoutMs: 30_000 });
    await sleep(300);
    const stopped = await stack.docker(['stop', '-t', '1', 'ticker']);
    assert.equal(stopped.code, 0, stopped.stderr);
    const followed = await follow;
    assert.equal(followed.code, 0, 'logs -f ends when the container stops');
    assert.match(followed.stdout, /tick \d+\n$/);
    const wait = await stack.docker(['wait', 'ticker']);
    assert.equal(wait.stdout.trim(), '137');
    assert.match((await stack.docker(['ps', '-a', '--format', '{{.Names}} {{.Status}}'])).stdout, /^ticker Exited \(137\) /m);

    const sleeper = (await stack.docker(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
    const waiting = stack.docker(['wait', sleeper]);
    assert.equal((await stack.docker(['kill', sleeper])).code, 0);
    assert.equal((await waiting).stdout.trim(), '137');
    const again = (await stack.docker(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
    assert.equal((await stack.docker(['rm', '-f', again])).code, 0);
    assert.equal((await stack.request('GET', `/v1.12/containers/${again}/json`)).status, 404);
    assert.equal((await stack.docker(['rm', 'ticker', sleeper])).code, 0);
  });

  test('network modes none and host; Docker\'s default capabilities, and every host capability when privileged', async () => {
    const none = await stack.docker(['run', '--rm', '--net=none', 'busybox', 'sh', '-c', 'ls /sys/class/net']);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout.trim(), 'lo');
    const hostIfaces = fs.readdirSync('/sys/class/net').sort();
    const host = await stack.docker(['run', '--rm', '--net=host', 'busybox', 'sh', '-c', 'ls /sys/class/net']);
    assert.equal(host.code, 0, host.stderr);
    assert.deepEqual(host.stdout.trim().split(/\s+/).sort(), hostIfaces);
    const caps = await stack.docker(['run', '--rm', 'busybox', 'grep', 'CapEff', '/proc/self/status']);
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    assert.match(caps.stdout, /^CapEff:\s+00000000a80425fb$/m);
    const bounding = /^CapBnd:\s+([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1];
    const privileged = await stack.docker(['run', '--rm', '--privileged', 'busybox', 'grep', 'CapEff', '/proc/self/status']);
    assert.equal(privileged.code, 0, privileged.stderr);
    assert.equal(privileged.stdout.trim().split(/\s+/)[1], bounding);
    const devices = await stack.docker(['run', '--rm', 'busybox', 'sh', '-c', 'ls /dev']);
    assert.ok(!devices.stdout.split(/\s+/).includes('sda') && devices.stdout.includes('null'));
  });

  test('Dns, VolumesFrom and Privileged in the create body (older docs) are ignored at every version, as by Docker 1.0', async () => {
    for (const v of ['1.4', '1.12']) {
      const body = { Image: 'busybox', Cmd: ['sh', '-c', 'grep CapEff /proc/self/status; cat /etc/resolv.conf'], Privileged: true, Dns: ['192.0.2.53'], VolumesFrom: 'no-such-container' };
      const created = await stack.request('POST', `/v${v}/containers/create`, { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(created.status, 201, created.text);
      const { Id } = JSON.parse(created.text) as { Id: string };
      const started = await stack.request('POST', `/v${v}/containers/${Id}/start`);
      assert.equal(started.status, 204, `v${v}: a VolumesFrom naming nothing would fail the start if it were read: ${started.text}`);
      assert.equal((await stack.request('POST', `/v${v}/containers/${Id}/wait`)).status, 200);
      const logs = (await stack.docker(['logs', Id])).stdout;
      assert.match(logs, /^CapEff:\s+00000000a80425fb$/m, `v${v}: not privileged`);
      assert.doesNotMatch(logs, /192\.0\.2\.53/, `v${v}: the create body's Dns is not used`);
      const inspect = JSON.parse((await stack.request('GET', `/v1.12/containers/${Id}/json`)).text);
      assert.equal(inspect.HostConfig.Privileged, false);
      assert.ok(!('Dns' in inspect.Config) && !('VolumesFrom' in inspect.Config), 'not kept in Config either');
      assert.equal((await stack.request('DELETE', `/v1.12/containers/${Id}`)).status, 204);
    }
  });

  test('ps -l and -n, and the list\'s since and before: newest first, since and before exclusive', async () => {
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await stack.docker(['create', '--name', `order${n}`, 'busybox', 'true'])).stdout.trim());
    const [c1, c2, c3] = ids;
    assert.equal((await stack.docker(['ps', '-l', '-q', '--no-trunc'])).stdout.trim(), c3, 'ps -l: the latest, stopped or not');
    assert.deepEqual((await stack.docker(['ps', '-n', '2', '-q', '--no-trunc'])).stdout.trim().split('\n'), [c3, c2]);
    const list = async (query: string) => (JSON.parse((await stack.request('GET', `/v1.12/containers/json?${query}`)).text) as Array<{ Id: string }>).map((c) => c.Id).filter((id) => ids.includes(id));
    assert.deepEqual(await list('limit=2'), [c3, c2], 'limit implies all');
    assert.deepEqual(await list('since=order1'), [c3, c2]);
    assert.deepEqual(await list('before=order3'), [c2, c1]);
    assert.deepEqual(await list('since=order1&before=order3'), [c2]);
    const unknown = await stack.request('GET', '/v1.12/containers/json?since=nope');
    assert.equal(unknown.status, 500);
    assert.equal(unknown.text, 'Could not find container with name or id nope\n');
    assert.equal((await stack.docker(['rm', ...ids])).code, 0);
  });

  test('lifecycle as Docker 1.0 gave it: the events of stop, restart and kill, another signal without one, pause and kill errors, wait', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const id = (await stack.docker(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
    const post = (p: string) => stack.request('POST', `/v1.12/containers/${id}/${p}`);
    assert.equal((await post('stop?t=0')).status, 204);
    assert.equal((await post('start')).status, 204);
    assert.equal((await post('restart?t=0')).status, 204);
    assert.equal((await post('kill?signal=WINCH')).status, 204, 'another signal: sent, no event');
    assert.equal((await post('kill?signal=SIGWINCH')).status, 204, 'a name with SIG');
    assert.equal((await post('kill?signal=28')).status, 204, 'a number, as v1.6 sent it');
    const notPaused = await post('unpause');
    assert.equal(notPaused.status, 500);
    assert.equal(notPaused.text, `Cannot unpause container ${id}: Container ${id} is not paused\n`);
    assert.equal((await post('pause')).status, 204);
    const again = await post('pause');
    assert.equal(again.text, `Cannot pause container ${id}: Container ${id} is already paused\n`);
    const pausedKill = await post('kill');
    assert.equal(pausedKill.status, 500);
    assert.equal(pausedKill.text, `Cannot kill container ${id}: Container ${id} is paused. Unpause the container before stopping\n`);
    const pausedStop = await post('stop?t=0');
    assert.equal(pausedStop.status, 500);
    assert.equal(pausedStop.text, `Cannot stop container ${id}: Container ${id} is paused. Unpause the container before stopping\n`);
    const pausedRestart = await post('restart?t=0');
    assert.equal(pausedRestart.status, 500);
    assert.equal(pausedRestart.text, `Cannot restart container ${id}: Container ${id} is paused. Unpause the container before stopping\n`);
    assert.equal((await post('unpause')).status, 204);
    assert.equal((await post('kill')).status, 204);
    const badSignal = await post('kill?signal=NOPE');
    assert.equal(badSignal.status, 500);
    assert.equal(badSignal.text, 'Invalid signal: NOPE\n');
    const events = (await stack.request('GET', `/v1.12/events?since=${since}&until=${Math.floor(Date.now() / 1000) + 1}`)).text;
    const statuses = events.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { status: string; id: string }).filter((e) => e.id === id).map((e) => e.status);
    // pause and unpause events are a deliberate addition (docs/deviations.md).
    assert.deepEqual(statuses, ['create', 'start', 'die', 'stop', 'start', 'die', 'restart', 'pause', 'unpause', 'die', 'kill']);
    // A container that is not running: stop and kill are 204, pause is refused.
    assert.equal((await post('stop?t=0')).status, 204);
    assert.equal((await post('kill')).status, 204);
    const stoppedPause = await post('pause');
    assert.equal(stoppedPause.status, 500);
    assert.equal(stoppedPause.text, `Cannot pause container ${id}: Container ${id} is not running\n`);
    assert.equal((await stack.docker(['rm', id])).code, 0);

    const never = (await stack.docker(['create', 'busybox', 'true'])).stdout.trim();
    assert.deepEqual(JSON.parse((await stack.request('POST', `/v1.12/containers/${never}/wait`)).text), { StatusCode: 0 }, 'never started: 0 at once');
    assert.equal((await stack.docker(['rm', never])).code, 0);
  });

  test('PortSpecs of the v1.0 docs expose their ports; a host mapping in them warns and publishes nothing', async () => {
    const created = await stack.request('POST', '/v1.0/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'busybox', Cmd: ['true'], PortSpecs: ['22', '8080:80/tcp'] }) });
    assert.equal(created.status, 201, created.text);
    const { Id, Warnings } = JSON.parse(created.text) as { Id: string; Warnings: string[] };
    assert.deepEqual(Warnings, ['The mapping to public ports on your host via Dockerfile EXPOSE (host:port:port) has been deprecated. Use -p to publish the ports.']);
    const inspect = JSON.parse((await stack.request('GET', `/v1.12/containers/${Id}/json`)).text);
    assert.deepEqual(inspect.Config.ExposedPorts, { '22/tcp': {}, '80/tcp': {} });
    assert.equal(inspect.Config.PortSpecs, null);
    const plain = JSON.parse((await stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'busybox', Cmd: ['true'] }) })).text);
    assert.equal(plain.Warnings, null, 'no warning: null, as Docker 1.0 answered');
    // Cmd and Entrypoint as plain strings: one-element lists.
    const strings = JSON.parse((await stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'busybox', Entrypoint: 'echo', Cmd: 'from a string' }) })).text);
    const sconfig = JSON.parse((await stack.request('GET', `/v1.12/containers/${strings.Id}/json`)).text).Config;
    assert.deepEqual([sconfig.Entrypoint, sconfig.Cmd], [['echo'], ['from a string']]);
    // A start body that is not JSON by its Content-Type is no host config.
    const started = await stack.request('POST', `/v1.12/containers/${strings.Id}/start`, { headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ Binds: ['/tmp:/hostdir'] }) });
    assert.equal(started.status, 204, started.text);
    assert.equal(JSON.parse((await stack.request('POST', `/v1.12/containers/${strings.Id}/wait`)).text).StatusCode, 0);
    assert.equal((await stack.docker(['logs', strings.Id])).stdout, 'from a string\n');
    assert.equal(JSON.parse((await stack.request('GET', `/v1.12/containers/${strings.Id}/json`)).text).HostConfig.Binds, null);
    for (const id of [Id, plain.Id, strings.Id]) assert.equal((await stack.request('DELETE', `/v1.12/containers/${id}`)).status, 204);
  });

  test('nothing is left behind: mounts, monitors and directories go with the containers', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await stack.docker(['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim());
    assert.ok(mountsBelow(path.join(stack.root, 'containers')).length >= 3);
    // One monitor per container, each a few hundred KiB at most.
    const monitors = processesMentioning(stack.root).filter((p) => p.cmd.includes('stevedore-shim'));
    assert.equal(monitors.length, 3);
    for (const m of monitors) {
      const rss = rssKiB(m.pid);
      assert.ok(rss > 0 && rss <= 384, `a monitor's resident memory is ${rss} KiB`);
    }
    assert.equal((await stack.docker(['rm', '-f', ...ids])).code, 0);
    const all = (await stack.docker(['ps', '-a', '-q'])).stdout.trim().split('\n').filter(Boolean);
    if (all.length) assert.equal((await stack.docker(['rm', '-f', ...all])).code, 0);
    assert.deepEqual(mountsBelow(stack.root), []);
    assert.deepEqual(fs.readdirSync(path.join(stack.root, 'containers')).filter((f) => !f.startsWith('containers.db')), []);
    const runtimeState = path.join(stack.root, 'run', 'runtime');
    assert.deepEqual(fs.existsSync(runtimeState) ? fs.readdirSync(runtimeState) : [], []);
  });

  test('per version: inspect keys, the list, logs framing, and a raw attach with and without Upgrade', async () => {
    const id = (await stack.docker(['create', 'busybox', 'sh', '-c', 'echo to-out; echo to-err >&2'])).stdout.trim();
    const old = JSON.parse((await stack.request('GET', `/v1.11/containers/${id}/json`)).text);
    assert.equal(old.ID, id);
    assert.equal(Object.keys(old)[0], 'ID');
    assert.equal(Object.keys(old).at(-1), 'HostConfig');
    const cur = JSON.parse((await stack.request('GET', `/v1.12/containers/${id}/json`)).text);
    assert.equal(cur.Id, id);
    assert.deepEqual(Object.keys(cur), [...Object.keys(cur)].sort());
    assert.equal(typeof cur.HostConfig, 'object');
    assert.equal(cur.State.StartedAt, '0001-01-01T00:00:00Z');

    // Attach before start, as docker run does, over a raw socket with Upgrade.
    const sock = net.connect(stack.socket);
    const received: Buffer[] = [];
    sock.on('data', (c) => received.push(c));
    const closed = new Promise((r) => sock.on('close', r));
    await new Promise((r) => sock.on('connect', r));
    sock.write(`POST /v1.12/containers/${id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`);
    await sleep(300);
    sock.end(); // half-close: output must keep flowing
    assert.equal((await stack.request('POST', `/v1.12/containers/${id}/start`)).status, 204);
    await closed;
    const all = Buffer.concat(received);
    const headEnd = all.indexOf('\r\n\r\n');
    assert.match(all.subarray(0, headEnd).toString(), /^HTTP\/1\.1 101 UPGRADED\r\nContent-Type: application\/vnd\.docker\.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp/);
    const frames = demux(all.subarray(headEnd + 4));
    assert.deepEqual(frames.filter(([s]) => s === 1).map(([, t]) => t).join(''), 'to-out\n');
    assert.deepEqual(frames.filter(([s]) => s === 2).map(([, t]) => t).join(''), 'to-err\n');

    const muxed = await stack.request('GET', `/v1.12/containers/${id}/logs?stdout=1&stderr=1`);
    assert.deepEqual(demux(muxed.body).map(([s, t]) => `${s}:${t}`).sort(), ['1:to-out\n', '2:to-err\n']);
    const raw = await stack.request('GET', `/v1.5/containers/${id}/logs?stdout=1&stderr=1`);
    assert.deepEqual(raw.text.split('\n').filter(Boolean).sort(), ['to-err', 'to-out']);
    const none = await stack.request('GET', `/v1.12/containers/${id}/logs`);
    assert.match(none.body.subarray(8).toString(), /You must choose at least one stream/);
    const stamped = await stack.request('GET', `/v1.12/containers/${id}/logs?stdout=1&timestamps=1`);
    assert.match(demux(stamped.body)[0][1], /^\[[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}\] to-out\n$/);

    const list12 = JSON.parse((await stack.request('GET', '/v1.12/containers/json?all=1')).text).find((c: any) => c.Id === id);
    assert.deepEqual(Object.keys(list12), ['Command', 'Created', 'Id', 'Image', 'Names', 'Ports', 'Status']);
    assert.deepEqual(list12.Ports, []);
    assert.match(list12.Status, /^Exited \(0\) /);
    const list14 = JSON.parse((await stack.request('GET', '/v1.4/containers/json?all=1')).text).find((c: any) => c.Id === id);
    assert.equal(list14.Ports, '');
    assert.equal((await stack.docker(['rm', id])).code, 0);

    // A TTY container is never multiplexed (G10), whatever the version.
    const tty = JSON.parse((await stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'busybox', Cmd: ['echo', 'on-a-tty'], Tty: true }) })).text).Id as string;
    assert.equal((await stack.request('POST', `/v1.12/containers/${tty}/start`)).status, 204);
    assert.equal((await stack.request('POST', `/v1.12/containers/${tty}/wait`)).status, 200);
    for (const v of ['1.5', '1.6', '1.12']) assert.equal((await stack.request('GET', `/v${v}/containers/${tty}/logs?stdout=1`)).text, 'on-a-tty\r\n', `v${v}`);
    assert.equal((await stack.docker(['rm', tty])).code, 0);
  });

  test('attach without Upgrade (as Docker 1.0 clients did) takes the connection over: stdin in, output out', async () => {
    for (const [version, multiplexed] of [['1.5', false], ['1.12', true]] as const) {
      const created = await stack.request('POST', `/v${version}/containers/create`, {
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ Image: 'busybox', Cmd: ['sh', '-c', 'cat; echo done >&2'], OpenStdin: true, StdinOnce: true, AttachStdin: true }),
      });
      assert.equal(created.status, 201, created.text);
      const id = JSON.parse(created.text).Id;
      const sock = net.connect(stack.socket);
      const received: Buffer[] = [];
      sock.on('data', (c) => received.push(c));
      const closed = new Promise((r) => sock.on('close', r));
      await new Promise((r) => sock.on('connect', r));
      sock.write(`POST /v${version}/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
      for (let i = 0; i < 50 && !Buffer.concat(received).includes('\r\n\r\n'); i++) await sleep(20);
      assert.equal((await stack.request('POST', `/v${version}/containers/${id}/start`)).status, 204);
      // Input that would be a malformed request to an HTTP parser.
      sock.write('line one\n');
      await sleep(100);
      sock.write('GET / HTTP/1.1\r\n\n');
      sock.end(); // the end of stdin; the output keeps flowing until the container exits
      await closed;
      const all = Buffer.concat(received);
      const headEnd = all.indexOf('\r\n\r\n');
      assert.match(all.subarray(0, headEnd).toString(), /^HTTP\/1\.1 200 OK\r\nContent-Type: application\/vnd\.docker\.raw-stream/);
      const body = all.subarray(headEnd + 4);
      if (multiplexed) {
        const frames = demux(body);
        assert.equal(frames.filter(([s]) => s === 1).map(([, t]) => t).join(''), 'line one\nGET / HTTP/1.1\r\n\n');
        assert.equal(frames.filter(([s]) => s === 2).map(([, t]) => t).join(''), 'done\n');
      } else {
        const text = body.toString();
        assert.ok(text.includes('line one\nGET / HTTP/1.1\r\n\n') && text.includes('done\n'), JSON.stringify(text));
        assert.equal(text.length, 'line one\nGET / HTTP/1.1\r\n\ndone\n'.length);
      }
      assert.equal(JSON.parse((await stack.request('GET', `/v1.12/containers/${id}/json`)).text).State.ExitCode, 0);
      assert.equal((await stack.docker(['rm', id])).code, 0);
    }

    // Without OpenStdin the attach's stdin goes nowhere: the container reads an empty input.
    const closedIn = JSON.parse((await stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'busybox', Cmd: ['sh', '-c', 'cat; echo read-all'] }) })).text).Id as string;
    const sock = net.connect(stack.socket);
    const received: Buffer[] = [];
    sock.on('data', (c) => received.push(c));
    const closed = new Promise((r) => sock.on('close', r));
    await new Promise((r) => sock.on('connect', r));
    sock.write(`POST /v1.12/containers/${closedIn}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    for (let i = 0; i < 50 && !Buffer.concat(received).includes('\r\n\r\n'); i++) await sleep(20);
    sock.write('ignored input\n');
    assert.equal((await stack.request('POST', `/v1.12/containers/${closedIn}/start`)).status, 204);
    await closed;
    const all = Buffer.concat(received);
    assert.deepEqual(demux(all.subarray(all.indexOf('\r\n\r\n') + 4)).map(([, t]) => t).join(''), 'read-all\n');
    assert.equal((await stack.docker(['rm', closedIn])).code, 0);
  });
});
