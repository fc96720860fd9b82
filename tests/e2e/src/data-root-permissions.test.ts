// The data root is private (CVE-2021-41091's class): another user of the
// host can neither list it, read image or container files, run a setuid
// binary a container wrote into its writable layer or an image's layer
// carries, nor open a device node they hold. Only the group `docker` may
// pass through the root, to the API socket, and nothing further. The modes
// are set at start-up, also on a root an older version made wider, and the
// image's own modes inside containers stay as the image made them.
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shortTempDir, startStackWithBusybox, stopStack, type Stack } from './harness';

const NOBODY = 65534;
/** Busybox takes its applet from its own name unless that starts with `busybox`: a copy so named runs `busybox-suid id -u`. */
const SUID = 'busybox-suid';
const DEVICE = 'dev-null-copy';

/** The group `docker`'s id, when the host has one. */
function dockerGid(): number | undefined {
  const line = fs.readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('docker:'));
  return line ? Number(line.split(':')[2]) : undefined;
}

const mode = (p: string): number => fs.lstatSync(p).mode & 0o7777;
const octal = (m: number): string => `0${m.toString(8)}`;

/** A command run as the host user nobody (with `groups` as supplementary groups), no input. */
async function asNobody(args: string[], groups: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = spawnSync('runuser', ['-u', 'nobody', ...groups.flatMap((g) => ['-G', g]), '--', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** Asserts that nobody's attempt failed because of a permission, not for another reason. */
async function refusedToNobody(args: string[], groups: string[] = []): Promise<void> {
  const r = await asNobody(args, groups);
  assert.notEqual(r.code, 0, `${args.join(' ')} succeeded as nobody: ${r.stdout}`);
  assert.match(r.stderr, /Permission denied/, `${args.join(' ')}: ${r.stderr}`);
}

/** The directories directly below the data root that a running stack has made. */
const TOP_DIRS = ['run', 'logs', 'redis', 'images', 'containers', 'containers-removed', 'volumes', 'network', 'builds'];

/** The layer directory of the image store that holds `rel`. */
function layerWith(root: string, rel: string): string {
  const layers = path.join(root, 'images', 'l');
  const found = fs.readdirSync(layers).map((n) => path.join(layers, n)).find((d) => fs.existsSync(path.join(d, rel)));
  assert.ok(found, `no layer holds ${rel}`);
  return found;
}

describe('the data root is private to root', () => {
  let stack: Stack;
  let id = '';
  let upper = '';
  before(async () => {
    stack = await startStackWithBusybox();
    // A container writes a setuid-root copy of busybox and a device node anybody may open into its writable layer.
    const run = await stack.docker(['run', '--name', 'writer', 'busybox', 'sh', '-c', `cp /bin/busybox /${SUID} && chmod 4755 /${SUID} && mknod -m 666 /${DEVICE} c 1 3`]);
    assert.equal(run.code, 0, run.stderr);
    id = (await stack.docker(['inspect', '--format', '{{.Id}}', 'writer'])).stdout.trim();
    upper = path.join(stack.root, 'containers', id, 'upper');
    // And an image's layer carries both.
    const commit = await stack.docker(['commit', 'writer', 'carrier']);
    assert.equal(commit.code, 0, commit.stderr);
    // engine-id is made on the first /info.
    assert.equal((await stack.docker(['info'])).code, 0);
  });
  after(() => stopStack(stack));

  test('the container\'s writable layer and the committed layer hold a setuid-root binary and a device node', () => {
    const layer = layerWith(stack.root, SUID);
    for (const dir of [upper, layer]) {
      const suid = fs.statSync(path.join(dir, SUID));
      assert.equal(suid.mode & 0o7777, 0o4755, dir);
      assert.equal(suid.uid, 0);
      const dev = fs.statSync(path.join(dir, DEVICE));
      assert.ok(dev.isCharacterDevice(), dir);
      assert.equal(dev.rdev, (1 << 8) | 3);
      assert.equal(dev.mode & 0o777, 0o666);
    }
  });

  test('directories are 0700, the root 0710 for the group docker (the API socket is in it), metadata files 0600', () => {
    const gid = dockerGid();
    const root = fs.statSync(stack.root);
    assert.equal(root.mode & 0o7777, gid === undefined ? 0o700 : 0o710, octal(root.mode & 0o7777));
    assert.equal(root.uid, 0);
    assert.equal(root.gid, gid ?? 0);
    for (const d of TOP_DIRS) {
      const st = fs.statSync(path.join(stack.root, d));
      assert.equal(st.mode & 0o7777, 0o700, `${d}: ${octal(st.mode & 0o7777)}`);
      assert.equal(st.uid, 0, d);
    }
    for (const d of ['images/l', 'images/tmp', 'images/blobs', `containers/${id}`, 'run/runtime']) assert.equal(mode(path.join(stack.root, d)), 0o700, d);
    const files = [
      'engine-id', 'images/images.db', 'containers/containers.db', 'run/state.json', 'run/supervisor.pid',
      `containers/${id}/config.json`, `containers/${id}/json.log`,
      ...fs.readdirSync(path.join(stack.root, 'logs')).map((f) => `logs/${f}`),
    ];
    for (const f of files) assert.equal(mode(path.join(stack.root, f)), 0o600, `${f}: ${octal(mode(path.join(stack.root, f)))}`);
    // What SQLite keeps beside its databases, and Redis's files.
    const beside = (dir: string) => fs.readdirSync(dir, { recursive: true }).map((f) => path.join(dir, String(f))).filter((f) => fs.lstatSync(f).isFile());
    for (const f of [...beside(path.join(stack.root, 'images')).filter((f) => /images\.db-/.test(f)), ...beside(path.join(stack.root, 'redis'))]) {
      assert.equal(mode(f) & 0o077, 0, `${f}: ${octal(mode(f))}`);
    }
    // Sockets: the services' for root only, the API's for the group docker.
    for (const s of fs.readdirSync(path.join(stack.root, 'run')).filter((f) => f.endsWith('.sock'))) {
      assert.equal(mode(path.join(stack.root, 'run', s)), 0o600, s);
    }
    const api = fs.statSync(stack.socket);
    assert.equal(api.mode & 0o777, 0o660);
    assert.equal(api.gid, gid ?? 0);
    // The files mounted into the container stay readable by its users.
    for (const f of ['hosts', 'hostname', 'resolv.conf']) assert.equal(mode(path.join(stack.root, 'containers', id, f)), 0o644, f);
  });

  test('another user can neither list the root nor read image or container files', async () => {
    const find = await asNobody(['find', stack.root]);
    assert.notEqual(find.code, 0);
    assert.deepEqual(find.stdout.trim().split('\n'), [stack.root], 'find saw nothing below the root');
    assert.match(find.stderr, /Permission denied/);
    await refusedToNobody(['ls', stack.root]);
    const busybox = path.join(layerWith(stack.root, 'bin/busybox'), 'bin', 'busybox');
    await refusedToNobody(['ls', '-l', busybox]);
    await refusedToNobody(['cat', busybox]);
    for (const f of ['engine-id', 'images/images.db', 'containers/containers.db', `containers/${id}/config.json`, `containers/${id}/json.log`, 'logs/image-store.log']) {
      await refusedToNobody(['cat', path.join(stack.root, f)]);
    }
  });

  test('another user can neither run the setuid copies nor open the device nodes', async () => {
    const layer = layerWith(stack.root, SUID);
    for (const dir of [upper, layer]) {
      // runuser reports the failed exec (126) with the reason.
      await refusedToNobody([path.join(dir, SUID), 'id', '-u']);
      await refusedToNobody(['cat', path.join(dir, DEVICE)]);
      await refusedToNobody(['sh', '-c', `echo x > ${path.join(dir, DEVICE)}`]);
    }
  });

  test('the same files in a directory open to all: nobody runs and opens them (the refusals are the data root\'s doing)', async () => {
    const open = shortTempDir('open-');
    fs.chmodSync(open, 0o755);
    const copy = spawnSync('cp', ['-a', path.join(upper, SUID), path.join(upper, DEVICE), open], { encoding: 'utf8' });
    assert.equal(copy.status, 0, copy.stderr);
    const ran = await asNobody([path.join(open, SUID), 'id', '-u']);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout.trim(), String(NOBODY)); // busybox drops the privilege itself; another binary need not
    assert.equal((await asNobody(['sh', '-c', `echo x > ${path.join(open, DEVICE)} && cat ${path.join(open, DEVICE)}`])).code, 0);
  });

  test('the group docker reaches the API socket and nothing else; other users not even the socket', async () => {
    const gid = dockerGid();
    const config = shortTempDir('dcfg-');
    fs.chownSync(config, NOBODY, NOBODY);
    const version = ['env', `DOCKER_HOST=${stack.dockerHost}`, `DOCKER_CONFIG=${config}`, 'docker', 'version', '--format', '{{.Server.APIVersion}}'];
    const outsider = await asNobody(version);
    assert.notEqual(outsider.code, 0);
    assert.match(outsider.stderr, /permission denied/i);
    if (gid === undefined) return;
    const member = await asNobody(version, ['docker']);
    assert.equal(member.code, 0, member.stderr);
    assert.equal(member.stdout.trim(), '1.12');
    await refusedToNobody(['ls', stack.root], ['docker']);
    await refusedToNobody(['cat', path.join(stack.root, 'engine-id')], ['docker']);
    await refusedToNobody(['ls', path.join(stack.root, 'images')], ['docker']);
    await refusedToNobody([path.join(upper, SUID), 'id', '-u'], ['docker']);
  });

  test('as root, the docker CLI works through the socket, and containers see the image\'s modes', async () => {
    const ps = await stack.docker(['ps', '-a', '--format', '{{.Names}}']);
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.stdout, /writer/);
    // A user inside the container: `/` and the image's files as the image (and Docker) made them.
    const r = await stack.docker(['run', '--rm', '-u', 'nobody', '-w', '/work/dir', 'busybox', 'sh', '-c', 'stat -c "%n %a" / /bin/busybox /tmp /etc/hosts /work/dir && cat /etc/hosts /etc/resolv.conf > /dev/null && ls / > /dev/null']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['/ 755', '/bin/busybox 755', '/tmp 1777', '/etc/hosts 644', '/work/dir 755']);
    // The setuid bit a container set survives a commit, for containers of the image.
    const carried = await stack.docker(['run', '--rm', 'carrier', 'stat', '-c', '%a %u', `/${SUID}`]);
    assert.equal(carried.stdout.trim(), '4755 0', carried.stderr);
  });

  test('a root an older version left wider is tightened by `up`', async () => {
    await stack.down();
    fs.chmodSync(stack.root, 0o755);
    fs.chownSync(stack.root, 0, 0);
    for (const d of TOP_DIRS) fs.chmodSync(path.join(stack.root, d), 0o755);
    for (const d of ['images/l', 'images/tmp', 'images/blobs']) fs.chmodSync(path.join(stack.root, d), 0o755);
    const files = ['engine-id', 'images/images.db', 'containers/containers.db', 'logs/api-edge.log', 'logs/supervisor.log', 'logs/redis.log'];
    for (const f of files) fs.chmodSync(path.join(stack.root, f), 0o644);
    const up = await stack.stevedore(['up']);
    assert.equal(up.code, 0, up.stderr);
    const gid = dockerGid();
    assert.equal(mode(stack.root), gid === undefined ? 0o700 : 0o710);
    assert.equal(fs.statSync(stack.root).gid, gid ?? 0);
    for (const d of [...TOP_DIRS, 'images/l', 'images/tmp', 'images/blobs']) assert.equal(mode(path.join(stack.root, d)), 0o700, d);
    for (const f of files) assert.equal(mode(path.join(stack.root, f)), 0o600, f);
    await refusedToNobody(['cat', path.join(stack.root, 'images', 'images.db')]);
    assert.equal((await stack.docker(['version'])).code, 0);
  });
});

describe('the data root with every service in one process (STEVEDORE_PROCESSES=one)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox({ STEVEDORE_PROCESSES: 'one' });
  });
  after(() => stopStack(stack));

  test('the same modes, and containers still see the image\'s', async () => {
    const gid = dockerGid();
    assert.equal(mode(stack.root), gid === undefined ? 0o700 : 0o710);
    for (const d of ['run', 'logs', 'redis', 'images', 'containers', 'volumes']) assert.equal(mode(path.join(stack.root, d)), 0o700, d);
    for (const f of ['images/images.db', 'containers/containers.db', 'run/state.json', 'logs/supervisor.log']) assert.equal(mode(path.join(stack.root, f)), 0o600, f);
    for (const f of fs.readdirSync(path.join(stack.root, 'redis'), { recursive: true }).map((f) => path.join(stack.root, 'redis', String(f)))) {
      if (fs.lstatSync(f).isFile()) assert.equal(mode(f) & 0o077, 0, f);
    }
    const r = await stack.docker(['run', '--rm', '-u', 'nobody', 'busybox', 'stat', '-c', '%n %a', '/', '/bin/busybox', '/tmp', '/etc/hosts']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['/ 755', '/bin/busybox 755', '/tmp 1777', '/etc/hosts 644']);
    await refusedToNobody(['find', path.join(stack.root, 'images')]);
  });
});
