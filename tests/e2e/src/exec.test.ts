// docker exec through today's CLI (it sends exec at 1.12, as a superset of
// what Docker 1.0 served): output, stdin, a terminal and its size, detached
// processes, users, the exit status of the process (0, 3, 126, 127), and
// through raw HTTP what the CLI does not send at 1.12 (WorkingDir, Env), the
// refusals and the exec's record. Attempts to break it: a second start, a
// container that stopped or is paused, a client that goes away, the runtime
// killed while an exec is attached, an exec that outlives its container.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { demux, runCommand, sleep, type Stack, startStackWithBusybox, stopStack } from './harness';

/** POST /containers/(id)/exec through raw HTTP: the exec's ID. */
async function createExec(stack: Stack, container: string, config: object): Promise<string> {
  const r = await stack.request('POST', `/v1.12/containers/${container}/exec`, { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(config) });
  assert.equal(r.status, 201, r.text);
  return (JSON.parse(r.text) as { Id: string }).Id;
}

async function execJson(stack: Stack, id: string): Promise<Record<string, unknown>> {
  const r = await stack.request('GET', `/v1.12/exec/${id}/json`);
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text) as Record<string, unknown>;
}

/** An attached start on a raw socket, with the Upgrade headers today's CLI sends: the status line and the stream's bytes. */
function startAttached(stack: Stack, id: string, stdin?: Buffer, holdOpenMs = 0): Promise<{ head: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(stack.socket);
    let raw = Buffer.alloc(0);
    conn.on('data', (d: Buffer) => (raw = Buffer.concat([raw, d])));
    conn.on('error', reject);
    conn.on('close', () => {
      const at = raw.indexOf('\r\n\r\n');
      resolve({ head: raw.subarray(0, at).toString(), body: raw.subarray(at + 4) });
    });
    const body = JSON.stringify({ Detach: false, Tty: false });
    conn.write(`POST /v1.12/exec/${id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    if (stdin) conn.write(stdin);
    setTimeout(() => conn.end(), holdOpenMs);
  });
}

/** The CLI in a terminal (script(1) gives it one): what the terminal showed, and the exit status. */
async function inTerminal(stack: Stack, command: string, input: string): Promise<{ code: number; stdout: string }> {
  const env = { ...process.env, DOCKER_HOST: stack.dockerHost, DOCKER_CONFIG: stack.dockerConfig, DOCKER_CLI_HINTS: 'false' };
  const r = await runCommand('script', ['-qec', command, '/dev/null'], { env, input, timeoutMs: 30_000 });
  return { code: r.code, stdout: r.stdout.replace(/\r/g, '') };
}

describe('docker exec', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
    assert.equal((await stack.docker(['run', '-d', '--name', 'box', '-e', 'FROM_RUN=1', '-w', '/etc', 'busybox', 'sleep', '1000'])).code, 0);
  });
  // The last test kills container-runtime on purpose.
  after(() => stopStack(stack, { allowRestarts: true }));

  test('output, and the exit status of the process: 0, 3, 127 for a command not found, 126 for one that cannot run', async () => {
    const ls = await stack.docker(['exec', 'box', 'ls', '/']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(ls.stdout.split('\n').filter(Boolean).sort(), ['bin', 'dev', 'etc', 'proc', 'root', 'sys', 'tmp']);
    const split = await stack.docker(['exec', 'box', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.deepEqual([split.code, split.stdout, split.stderr], [3, 'out\n', 'err\n']);
    const missing = await stack.docker(['exec', 'box', 'no-such-command']);
    assert.equal(missing.code, 127);
    assert.match(missing.stdout + missing.stderr, /OCI runtime exec failed: .*no-such-command.*not found/);
    const notRunnable = await stack.docker(['exec', 'box', '/etc/passwd']);
    assert.equal(notRunnable.code, 126);
    assert.match(notRunnable.stdout + notRunnable.stderr, /OCI runtime exec failed: .*[Pp]ermission denied/);
  });

  test('the processes of a container and of an exec start with no signal ignored or blocked (none of the monitor\'s own settings reach them)', async () => {
    const masks = (text: string) => text.split('\n').filter((l) => /^Sig(Ign|Blk):/.test(l)).join(' ');
    const run = await stack.docker(['run', '--rm', 'busybox', 'grep', '-E', '^Sig(Ign|Blk):', '/proc/self/status']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(masks(run.stdout), 'SigBlk:\t0000000000000000 SigIgn:\t0000000000000000');
    const exec = await stack.docker(['exec', 'box', 'grep', '-E', '^Sig(Ign|Blk):', '/proc/self/status']);
    assert.equal(exec.code, 0, exec.stderr);
    assert.equal(masks(exec.stdout), 'SigBlk:\t0000000000000000 SigIgn:\t0000000000000000');
    // A writer whose reader went away dies of SIGPIPE (141 from the shell), as in Docker, instead of seeing EPIPE.
    const pipe = await stack.docker(['exec', 'box', 'sh', '-c', '(yes; echo "yes: $?" >&2) | head -c 1 >/dev/null']);
    assert.equal(pipe.code, 0, pipe.stderr);
    assert.equal(pipe.stderr, 'yes: 141\n');
  });

  test('exec -i: stdin reaches the process, 1 MiB of it unchanged; its end is the process\'s end of input', async () => {
    const echo = await stack.docker(['exec', '-i', 'box', 'cat'], { input: 'hello\n' });
    assert.deepEqual([echo.code, echo.stdout], [0, 'hello\n']);
    const data = randomBytes(512 * 1024).toString('hex');
    const sum = await stack.docker(['exec', '-i', 'box', 'md5sum'], { input: data });
    assert.equal(sum.stdout.split(' ')[0], createHash('md5').update(data).digest('hex'));
  });

  test('exec -it: a terminal of the client\'s size, input through it, Ctrl-D ends the shell, its exit status passed through', async () => {
    const sized = await inTerminal(stack, 'stty cols 91 rows 37; docker exec -it box sh -c "sleep 1; stty size; tty; exit 4"', '');
    assert.equal(sized.code, 4, sized.stdout);
    // (script(1) turns the end of its input into a NUL the terminal echoes as ^@.)
    assert.match(sized.stdout, /^(\^@)?37 91$/m);
    assert.match(sized.stdout, /^\/dev\/pts\/\d+$/m);
    const shell = await inTerminal(stack, 'docker exec -it box sh', 'echo typed-$((6*7))\n\u0004');
    assert.equal(shell.code, 0, shell.stdout);
    assert.match(shell.stdout, /typed-42/);
  });

  test('exec -u, and the container\'s environment and working directory by default', async () => {
    const nobody = await stack.docker(['exec', '-u', 'nobody', 'box', 'id']);
    assert.match(nobody.stdout, /^uid=65534\(nobody\) gid=65534\(nogroup\)/);
    assert.equal((await stack.docker(['exec', '-u', 'nobody', 'box', 'sh', '-c', 'echo $HOME'])).stdout, '/nonexistent\n');
    const unknown = await stack.docker(['exec', '-u', 'nosuchuser', 'box', 'id']);
    assert.notEqual(unknown.code, 0);
    assert.equal(unknown.code, 126);
    assert.match(unknown.stdout + unknown.stderr, /Unable to find user nosuchuser/);
    const env = await stack.docker(['exec', 'box', 'sh', '-c', 'echo $FROM_RUN; pwd']);
    assert.equal(env.stdout, '1\n/etc\n');
  });

  test('raw HTTP: WorkingDir and Env of an exec, its record while it runs and once it ended, a second start refused', async () => {
    const id = await createExec(stack, 'box', { Cmd: ['sh', '-c', 'pwd; echo $A $FROM_RUN; read x; echo got $x'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Env: ['A=b', 'FROM_RUN=2'], WorkingDir: '/tmp' });
    assert.match(id, /^[0-9a-f]{64}$/);
    const fresh = await execJson(stack, id);
    assert.deepEqual([fresh.Running, fresh.ExitCode, fresh.OpenStdin, fresh.ProcessConfig], [false, null, true, { tty: false, entrypoint: 'sh', arguments: ['-c', 'pwd; echo $A $FROM_RUN; read x; echo got $x'], privileged: false, user: '' }]);
    const { head, body } = await startAttached(stack, id, Buffer.from('line\n'), 200);
    assert.match(head, /^HTTP\/1.1 101 /);
    assert.match(head, /Upgrade: tcp/i);
    const frames = demux(body);
    assert.ok(frames.every(([stream]) => stream === 1), JSON.stringify(frames));
    assert.equal(frames.map(([, text]) => text).join(''), '/tmp\nb 2\ngot line\n');
    const ended = await execJson(stack, id);
    assert.deepEqual([ended.Running, ended.ExitCode, ended.Pid], [false, 0, 0]);
    const box = JSON.parse((await stack.docker(['inspect', 'box'])).stdout)[0] as { Id: string };
    assert.equal(ended.ContainerID, box.Id);
    const again = await stack.request('POST', `/v1.12/exec/${id}/start`, { headers: { 'Content-Type': 'application/json' }, body: '{"Detach":true}' });
    assert.equal(again.status, 409, again.text);
    assert.match(again.text, /has already run/);
  });

  test('refusals: no such exec (inspect, start, resize), an empty command, a stopped or paused container', async () => {
    const unknown = 'ab'.repeat(32);
    for (const [method, p] of [['GET', `/v1.12/exec/${unknown}/json`], ['POST', `/v1.12/exec/${unknown}/resize?h=10&w=10`], ['POST', `/v1.12/exec/${unknown}/start`], ['GET', '/v1.12/exec/short/json']]) {
      const r = await stack.request(method, p, { headers: { 'Content-Type': 'application/json' }, body: method === 'POST' ? '{"Detach":true}' : undefined });
      assert.equal(r.status, 404, `${method} ${p}: ${r.text}`);
      assert.match(r.text, /No such exec instance/);
    }
    const empty = await stack.request('POST', '/v1.12/containers/box/exec', { headers: { 'Content-Type': 'application/json' }, body: '{"Cmd":[]}' });
    assert.equal(empty.status, 400, empty.text);
    assert.equal((await stack.docker(['run', '-d', '--name', 'later', 'busybox', 'sleep', '1000'])).code, 0);
    const id = await createExec(stack, 'later', { Cmd: ['true'] });
    assert.equal((await stack.docker(['pause', 'later'])).code, 0);
    const paused = await stack.docker(['exec', 'later', 'true']);
    assert.notEqual(paused.code, 0);
    assert.match(paused.stderr, /is paused, unpause the container before exec/);
    assert.equal((await stack.docker(['unpause', 'later'])).code, 0);
    assert.equal((await stack.docker(['kill', 'later'])).code, 0);
    const stopped = await stack.docker(['exec', 'later', 'true']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /Container [0-9a-f]{64} is not running/);
    const late = await stack.request('POST', `/v1.12/exec/${id}/start`, { headers: { 'Content-Type': 'application/json' }, body: '{"Detach":true}' });
    assert.equal(late.status, 409, late.text);
    const resize = await stack.request('POST', `/v1.12/exec/${id}/resize?h=10&w=10`);
    assert.equal(resize.status, 409, resize.text);
    // Started again, the container's earlier execs that never ran are gone (as in Docker).
    assert.equal((await stack.docker(['start', 'later'])).code, 0);
    const stale = await stack.request('POST', `/v1.12/exec/${id}/start`, { headers: { 'Content-Type': 'application/json' }, body: '{"Detach":true}' });
    assert.equal(stale.status, 404, stale.text);
    // A uid past 2^31-1 would wrap around to root's.
    const wrapped = await stack.docker(['exec', '-u', '4294967295', 'later', 'id', '-u']);
    assert.notEqual(wrapped.stdout.trim(), '0');
    assert.match(wrapped.stdout + wrapped.stderr, /uids and gids must be in range 0-2147483647/);
    // An upgraded start's body is read by its Content-Length only: a chunked one is refused before the connection is taken.
    const chunked = await createExec(stack, 'later', { Cmd: ['cat'], AttachStdin: true, AttachStdout: true });
    const raw = await stack.raw(`POST /v1.12/exec/${chunked}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"Detach":false}\r\n0\r\n\r\n`, 3000);
    assert.match(raw, /^HTTP\/1.1 400 /);
    assert.equal((await stack.docker(['rm', '-f', 'later'])).code, 0);
    const gone = await stack.request('GET', `/v1.12/exec/${id}/json`);
    assert.equal(gone.status, 404, gone.text);
  });

  test('exec -d: the process runs detached, under the container\'s confinement, and ends with its container; exec_create, exec_start, exec_die', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    assert.equal((await stack.docker(['run', '-d', '--name', 'short', 'busybox', 'sleep', '1000'])).code, 0);
    assert.equal((await stack.docker(['exec', '-d', 'short', 'sleep', '777'])).code, 0);
    const top = await stack.docker(['top', 'short']);
    assert.match(top.stdout, /sleep 777/);
    // The container's cgroup, capabilities and seccomp filter: the same as its first process's.
    const confined = await stack.docker(['exec', 'short', 'sh', '-c', 'cat /proc/self/cgroup | sort; grep -E "^(CapEff|Seccomp):" /proc/self/status; echo --; cat /proc/1/cgroup | sort; grep -E "^(CapEff|Seccomp):" /proc/1/status']);
    const [self, init] = confined.stdout.split('--\n');
    assert.equal(self, init);
    assert.match(self, /Seccomp:\s+2/);
    assert.doesNotMatch(self, /CapEff:\s+0000003fffffffff|CapEff:\s+000001ffffffffff/);
    const execs = JSON.parse((await stack.request('GET', '/v1.12/containers/short/json')).text) as { Id: string };
    assert.equal((await stack.docker(['stop', '-t', '1', 'short'])).code, 0);
    const events = (await stack.request('GET', `/v1.12/events?since=${since}&until=${Math.floor(Date.now() / 1000) + 1}`)).text.trim().split('\n').map((l) => JSON.parse(l) as { status: string; id: string; Actor: { Attributes: Record<string, string> } });
    const mine = events.filter((e) => e.id === execs.Id && e.status.startsWith('exec_'));
    const detached = mine.find((e) => e.status === 'exec_create: sleep 777');
    assert.ok(detached, JSON.stringify(mine.map((e) => e.status)));
    assert.ok(mine.some((e) => e.status === 'exec_start: sleep 777'));
    const died = mine.find((e) => e.status === 'exec_die' && e.Actor.Attributes.execID === detached.Actor.Attributes.execID);
    assert.equal(died?.Actor.Attributes.exitCode, '137');
    const record = await execJson(stack, detached.Actor.Attributes.execID);
    assert.deepEqual([record.Running, record.ExitCode], [false, 137]);
  });

  test('attempts: a container named after another\'s full ID gets none of its execs; an exec whose output a process it left keeps open still ends, with its status', async () => {
    const victim = (await stack.docker(['run', '-d', '--name', 'victim', 'busybox', 'sleep', '1000'])).stdout.trim();
    const impostor = (await stack.docker(['run', '-d', '--name', victim, 'busybox', 'sleep', '1000'])).stdout.trim();
    assert.match(impostor, /^[0-9a-f]{64}$/);
    assert.equal((await stack.docker(['exec', 'victim', 'touch', '/in-victim'])).code, 0);
    assert.equal((await stack.docker(['exec', victim, 'ls', '/in-victim'])).code, 0, 'the full ID names the victim');
    assert.notEqual((await stack.docker(['exec', impostor, 'ls', '/in-victim'])).code, 0, 'the impostor has no such file');
    const started = Date.now();
    const left = await stack.docker(['exec', 'box', 'sh', '-c', '(while :; do echo tick; sleep 0.05; done) & exit 5']);
    assert.equal(left.code, 5);
    assert.ok(Date.now() - started < 6000, `${Date.now() - started} ms`);
    assert.equal((await stack.docker(['rm', '-f', 'victim', impostor])).code, 0);
  });

  test('a client that goes away: the process keeps running; a SIGKILL of the runtime does not end an attached exec', async () => {
    const id = await createExec(stack, 'box', { Cmd: ['sh', '-c', 'sleep 2; echo done > /tmp/left-alone'], AttachStdout: true });
    const conn = net.connect(stack.socket);
    const body = '{"Detach":false}';
    conn.write(`POST /v1.12/exec/${id}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await sleep(300);
    conn.destroy();
    assert.equal((await execJson(stack, id)).Running, true);
    await sleep(2500);
    assert.equal((await stack.docker(['exec', 'box', 'cat', '/tmp/left-alone'])).stdout, 'done\n');
    assert.deepEqual([(await execJson(stack, id)).ExitCode], [0]);

    // The second line is written once the runtime is back: what an exec writes while the runtime is away is lost to its
    // attachment (decisions.md; an exec has no log), and a slow machine restarts the runtime in more than the second a
    // fixed pause gave it.
    const cli = stack.docker(['exec', '-i', 'box', 'sh', '-c', 'read a; echo first $a; while [ ! -e /tmp/runtime-back ]; do usleep 50000; done; echo second; exit 6'], { input: 'one\n' });
    await sleep(800);
    const before = stack.process('container-runtime');
    process.kill(before.pid!, 'SIGKILL');
    for (let i = 0; i < 300 && stack.process('container-runtime').pid === before.pid; i++) await sleep(100);
    assert.equal((await stack.docker(['exec', 'box', 'true'])).code, 0, 'the runtime came back');
    // The edge opens the attachment again within its reconnection backoff (at most a second) of the runtime's return.
    await sleep(2000);
    assert.equal((await stack.docker(['exec', 'box', 'touch', '/tmp/runtime-back'])).code, 0);
    const r = await cli;
    assert.equal(r.code, 6, r.stderr);
    assert.equal(r.stdout, 'first one\nsecond\n');
    await stack.waitFor('/_ping');
  });
});
