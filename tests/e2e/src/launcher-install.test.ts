// What `./stevedore` installs, and that no package it installs is left
// running or enabled as a system service (issue 18). Nothing is installed:
// the package lists come from `./stevedore packages`, and the installing
// functions run with the script sourced, against stand-ins for apt-get,
// dpkg-query and systemctl that behave as Debian's do (a unit is enabled at
// install whatever the policy, and started only if /usr/sbin/policy-rc.d
// allows it), with the policy file in a temporary directory.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, shortTempDir, sleep } from './harness';

const STEVEDORE = path.join(REPO, 'stevedore');

function packages(command: string): { code: number; list: string[]; stderr: string } {
  const r = spawnSync(STEVEDORE, ['packages', command], { encoding: 'utf8' });
  return { code: r.status ?? 1, list: r.stdout.split('\n').filter(Boolean), stderr: r.stderr };
}

describe('the packages of each command', () => {
  const up = packages('up');
  const tests = packages('test');
  const bench = packages('bench');

  test('up: what the engine runs on and is built with, and nothing of the tests or of the Docker engine', () => {
    assert.equal(up.code, 0, up.stderr);
    for (const p of ['redis-server', 'runc', 'crun', 'iptables', 'iproute2', 'containernetworking-plugins', 'busybox-static', 'apparmor', 'protobuf-compiler', 'build-essential', 'musl-tools']) {
      assert.ok(up.list.includes(p), `up installs ${p}: ${up.list.join(' ')}`);
    }
    for (const p of ['docker.io', 'containerd', 'docker-registry', 'apache2-utils', 'redis-tools', 'attr', 'libcap2-bin']) {
      assert.ok(!up.list.includes(p), `up does not install ${p}`);
    }
  });

  test('test and bench: the engine\'s, the tests\' tools and the Docker engine 20.10', () => {
    for (const [name, r] of [['test', tests], ['bench', bench]] as const) {
      assert.equal(r.code, 0, r.stderr);
      for (const p of up.list) assert.ok(r.list.includes(p), `${name} installs the engine's ${p}`);
      for (const p of ['docker-registry', 'apache2-utils', 'docker.io']) assert.ok(r.list.includes(p), `${name} installs ${p}`);
      assert.equal(new Set(r.list).size, r.list.length, `${name}: no package twice`);
    }
  });

  test('an unknown command is refused', () => {
    const r = packages('everything');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /up, test or bench/);
  });
});

// Stand-ins. $FAKE/installed/<package>, $FAKE/enabled/<unit> and
// $FAKE/active/<unit> are the machine's state; $FAKE/log what was run.
const UNITS_OF = `
units_of() {
  case "$1" in
    redis-server) echo redis-server.service ;;
    docker.io) echo docker.service docker.socket ;;
    containerd) echo containerd.service ;;
    docker-registry) echo docker-registry.service ;;
  esac
}`;

const FAKE_DPKG_QUERY = `#!/bin/bash
# dpkg-query -W -f='\${Status}' PACKAGE
p=\${@: -1}
[ -e "$FAKE/installed/$p" ] || exit 1
printf 'install ok installed'
`;

const FAKE_APT_GET = `#!/bin/bash
${UNITS_OF}
echo "apt-get $*" >> "$FAKE/log"
[ "$1" = install ] || exit 0
if [ -x "$FAKE_POLICY" ]; then
  "$FAKE_POLICY" docker start; echo "policy during install: exit $?" >> "$FAKE/log"
else
  echo "policy during install: none" >> "$FAKE/log"
fi
echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> "$FAKE/log"
[ -z "\${FAKE_APT_FAIL:-}" ] || exit 100
if [ -n "\${FAKE_APT_HANG:-}" ]; then touch "$FAKE/hanging"; sleep 60; fi
for p in "$@"; do
  case "$p" in -*|install) continue ;; esac
  touch "$FAKE/installed/$p"
  [ "$p" != docker.io ] || touch "$FAKE/installed/containerd"
done
for p in "$@" containerd; do
  [ -e "$FAKE/installed/$p" ] || continue
  for u in $(units_of "$p"); do
    [ -e "$FAKE/enabled/$u" ] && continue
    touch "$FAKE/enabled/$u"   # deb-systemd-helper enable: whatever the policy says
    if [ ! -x "$FAKE_POLICY" ] || "$FAKE_POLICY" "$u" start; then touch "$FAKE/active/$u"; fi   # deb-systemd-invoke start
  done
done
`;

const FAKE_SYSTEMCTL = `#!/bin/bash
echo "systemctl $*" >> "$FAKE/log"
words=()
for a in "$@"; do case "$a" in -*) ;; *) words+=("$a") ;; esac; done
cmd=\${words[0]}
units=("\${words[@]:1}")
case "$cmd" in
  disable) [ -n "\${FAKE_STUBBORN:-}" ] || for u in "\${units[@]}"; do rm -f "$FAKE/enabled/$u"; done ;;
  stop) [ -n "\${FAKE_STUBBORN:-}" ] || for u in "\${units[@]}"; do rm -f "$FAKE/active/$u"; done ;;
  is-enabled) if [ -e "$FAKE/enabled/\${units[0]}" ]; then echo enabled; else echo disabled; exit 1; fi ;;
  is-active) [ -e "$FAKE/active/\${units[0]}" ] ;;
esac
`;

interface Machine {
  dir: string;
  policy: string;
  installed: string[];
  enabled: string[];
  active: string[];
  log: string;
}

function machine(state: { installed?: string[]; enabled?: string[]; active?: string[] } = {}): Machine {
  const dir = shortTempDir('sd-install-');
  for (const d of ['bin', 'installed', 'enabled', 'active', 'sbin']) fs.mkdirSync(path.join(dir, d));
  fs.writeFileSync(path.join(dir, 'bin', 'dpkg-query'), FAKE_DPKG_QUERY, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'bin', 'apt-get'), FAKE_APT_GET, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'bin', 'systemctl'), FAKE_SYSTEMCTL, { mode: 0o755 });
  for (const [kind, names] of Object.entries(state)) for (const n of names ?? []) fs.writeFileSync(path.join(dir, kind, n), '');
  const list = (kind: string) => fs.readdirSync(path.join(dir, kind)).sort();
  return {
    dir,
    policy: path.join(dir, 'sbin', 'policy-rc.d'),
    get installed() { return list('installed'); },
    get enabled() { return list('enabled'); },
    get active() { return list('active'); },
    get log() { return fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8') : ''; },
  };
}

/** The script sourced, its policy path, root and systemd's presence set for the stand-in machine. */
function installArgs(m: Machine, booted: boolean, wanted: string[]): string[] {
  const script = `source "$1"; shift
POLICY_RC_D=${JSON.stringify(m.policy)}
as_root() { "$@"; }
systemd_booted() { ${booted ? 'true' : 'false'}; }
ensure_apt_packages "$@"`;
  return ['-c', script, 'install', STEVEDORE, ...wanted];
}

function installEnv(m: Machine, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${path.join(m.dir, 'bin')}:${process.env.PATH}`, FAKE: m.dir, FAKE_POLICY: m.policy, ...extra };
}

function install(m: Machine, options: { booted?: boolean; wanted?: string[]; env?: NodeJS.ProcessEnv } = {}): { code: number; stderr: string } {
  const r = spawnSync('bash', installArgs(m, options.booted ?? false, options.wanted ?? packages('test').list), { encoding: 'utf8', env: installEnv(m, options.env), timeout: 60_000 });
  return { code: r.status ?? 1, stderr: r.stderr };
}

const DOCKER_UNITS = ['containerd.service', 'docker.service', 'docker.socket'];
const OUR_SERVICE_UNITS = ['containerd.service', 'docker-registry.service', 'docker.service', 'docker.socket', 'redis-server.service'];

describe('installing packages starts no service', () => {
  test('a fresh machine: during the install a policy refuses every start (101), then it is gone, and what was enabled is disabled', () => {
    const m = machine();
    const r = install(m);
    assert.equal(r.code, 0, r.stderr);
    assert.match(m.log, /^apt-get install .*\bdocker\.io\b/m);
    assert.match(m.log, /^policy during install: exit 101$/m);
    assert.match(m.log, /^DEBIAN_FRONTEND=noninteractive$/m);
    assert.ok(!fs.existsSync(m.policy), 'the policy is removed after the install');
    assert.ok(m.installed.includes('docker.io') && m.installed.includes('redis-server'));
    assert.deepEqual(m.active, [], 'no service started');
    assert.deepEqual(m.enabled, [], 'no service left enabled');
    assert.match(m.log, /^systemctl disable --quiet .*docker\.service/m);
  });

  test('on a machine booted with systemd, the units are also stopped and checked as not running', () => {
    const m = machine();
    const r = install(m, { booted: true });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(m.active, []);
    assert.deepEqual(m.enabled, []);
    assert.match(m.log, /^systemctl stop .*docker\.service/m);
    assert.match(m.log, /^systemctl is-active --quiet docker\.service$/m);
  });

  test('up installs no service of the Docker engine nor the registry, and leaves redis-server off', () => {
    const m = machine();
    const r = install(m, { wanted: packages('up').list, booted: true });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!m.installed.includes('docker.io') && !m.installed.includes('containerd') && !m.installed.includes('docker-registry'), m.installed.join(' '));
    assert.ok(m.installed.includes('redis-server'));
    assert.deepEqual(m.active, []);
    assert.deepEqual(m.enabled, []);
  });

  test('the Docker engine of a machine that had it is left as the administrator set it', () => {
    const m = machine({ installed: ['docker.io', 'containerd'], enabled: DOCKER_UNITS, active: DOCKER_UNITS });
    const r = install(m, { booted: true });
    assert.equal(r.code, 0, r.stderr);
    for (const u of DOCKER_UNITS) assert.doesNotMatch(m.log, new RegExp(`^systemctl .*${u.replace('.', '\\.')}`, 'm'), `${u} untouched`);
    assert.deepEqual(m.enabled, DOCKER_UNITS);
    assert.deepEqual(m.active, DOCKER_UNITS);
    assert.ok(m.installed.includes('docker-registry'));
    assert.ok(!m.enabled.includes('docker-registry.service') && !m.enabled.includes('redis-server.service'));
  });

  test('an existing policy is the administrator\'s: used as it is and left untouched; on a systemd machine what it let start is stopped', () => {
    const m = machine();
    const own = '#!/bin/sh\n# the administrator\'s own policy\nexit 0\n';
    fs.writeFileSync(m.policy, own, { mode: 0o750 });
    const r = install(m, { booted: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(m.log, /^policy during install: exit 0$/m);
    assert.equal(fs.readFileSync(m.policy, 'utf8'), own);
    assert.equal(fs.statSync(m.policy).mode & 0o777, 0o750);
    assert.deepEqual(m.active, [], 'started by the install, then stopped');
    assert.deepEqual(m.enabled, []);
  });

  test('a service that stays enabled or running is an error that names it', () => {
    const m = machine();
    const r = install(m, { booted: true, env: { FAKE_STUBBORN: '1' } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /services must stay off, but .*docker\.service is enabled/);
    assert.match(r.stderr, /systemctl disable --now .*docker\.service/);
    assert.ok(!fs.existsSync(m.policy));
  });

  test('a failed install removes the policy too, and fails', () => {
    const m = machine();
    const r = install(m, { env: { FAKE_APT_FAIL: '1' } });
    assert.notEqual(r.code, 0);
    assert.match(m.log, /^policy during install: exit 101$/m);
    assert.ok(!fs.existsSync(m.policy));
  });

  test('an install interrupted (SIGINT to the whole process group, as Ctrl-C in a terminal sends it) removes the policy', async () => {
    const m = machine();
    const child = spawn('bash', installArgs(m, false, packages('up').list), { env: installEnv(m, { FAKE_APT_HANG: '1' }), stdio: 'ignore', detached: true });
    try {
      const hanging = path.join(m.dir, 'hanging');
      for (let i = 0; i < 200 && !fs.existsSync(hanging); i++) await sleep(50);
      assert.ok(fs.existsSync(hanging), 'the install started');
      assert.ok(fs.existsSync(m.policy), 'the policy is in place while it runs');
      process.kill(-child.pid!, 'SIGINT');
      for (let i = 0; i < 100 && fs.existsSync(m.policy); i++) await sleep(50);
      assert.ok(!fs.existsSync(m.policy), 'the policy is gone after the interruption');
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // all gone already
      }
    }
  });

  test('nothing missing: nothing installed, no policy written', () => {
    const wanted = packages('test').list;
    const m = machine({ installed: [...wanted, 'containerd'] });
    const r = install(m, { wanted });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(m.log, '');
    assert.ok(!fs.existsSync(m.policy));
  });

  test('Debian\'s own deb-systemd-invoke, through which maintainer scripts start services, starts none while the policy is in place', { skip: !fs.existsSync('/usr/bin/deb-systemd-invoke') && 'no deb-systemd-invoke here' }, () => {
    const m = machine({ enabled: ['docker.service', 'redis-server.service'] }); // it starts only enabled units
    // deb-systemd-invoke reads $DPKG_ROOT/usr/sbin/policy-rc.d: the policy goes there, and systemctl is the stand-in.
    const root = path.join(m.dir, 'root');
    fs.mkdirSync(path.join(root, 'usr', 'sbin'), { recursive: true });
    const script = `source "$1"
POLICY_RC_D="$DPKG_ROOT/usr/sbin/policy-rc.d"
as_root() { "$@"; }
without_service_starts deb-systemd-invoke start docker.service
deb-systemd-invoke start redis-server.service`;
    const r = spawnSync('bash', ['-c', script, 'invoke', STEVEDORE], { encoding: 'utf8', env: installEnv(m, { DPKG_ROOT: root }), timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /policy-rc\.d returned 101, not running 'start docker\.service'/);
    assert.doesNotMatch(m.log, /docker\.service/, 'systemctl was not asked to start docker.service');
    assert.match(m.log, /^systemctl .*start redis-server\.service$/m, 'without the policy, the same call reaches systemctl');
    assert.ok(!fs.existsSync(path.join(root, 'usr', 'sbin', 'policy-rc.d')));
  });

  test('the units looked after are those of every package that brings a service', () => {
    const m = machine();
    // Services off here means every one of them was enabled by the stand-in install and then disabled.
    assert.equal(install(m).code, 0);
    assert.deepEqual(m.log.match(/^systemctl disable --quiet (.*)$/m)?.[1].split(' ').sort(), OUR_SERVICE_UNITS);
  });
});
