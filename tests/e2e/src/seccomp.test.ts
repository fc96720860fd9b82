// Docker's default seccomp profile on every container, none on a
// privileged one: a probe compiled here calls what the profile refuses
// and prints each errno.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { busyboxRootfsTar } from './images-fixtures';
import { shortTempDir, type Stack, startStackWithBusybox, stopStack } from './harness';

/** Each call the default profile refuses, made once: `name=0` or `name=ERRNO`. */
const PROBE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>
static void say(const char *name, long rc) { printf("%s=%s\n", name, rc < 0 ? strerrorname_np(errno) : "0"); }
int main(void) {
  say("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
  say("add_key", syscall(SYS_add_key, "user", "probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  say("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
  say("mount", mount("none", "/mnt", "tmpfs", 0, ""));
  say("unshare", unshare(CLONE_NEWUSER));
  return 0;
}
`;

describe('seccomp', () => {
  let stack: Stack;
  let work: string;
  before(async () => {
    stack = await startStackWithBusybox();
    work = shortTempDir('seccomp-');
    // The busybox image with the probe added as /probe.
    const root = path.join(work, 'root');
    fs.mkdirSync(root);
    execFileSync('tar', ['-C', root, '-xf', busyboxRootfsTar()]);
    fs.mkdirSync(path.join(root, 'mnt'), { recursive: true });
    fs.writeFileSync(path.join(work, 'probe.c'), PROBE);
    execFileSync('cc', ['-static', '-O1', '-o', path.join(root, 'probe'), path.join(work, 'probe.c')]);
    execFileSync('tar', ['-C', root, '--numeric-owner', '-cf', path.join(work, 'probe.tar'), '.']);
    const imported = await stack.docker(['import', path.join(work, 'probe.tar'), 'probe:1']);
    assert.equal(imported.code, 0, imported.stderr);
  });
  after(async () => {
    await stopStack(stack);
    fs.rmSync(work, { recursive: true, force: true });
  });

  const probe = async (extra: string[]) => {
    const r = await stack.docker(['run', '--rm', ...extra, 'probe:1', 'sh', '-c', 'grep Seccomp: /proc/self/status; /probe; if unshare -U true; then echo unshare-cli=0; fi']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  test('a container runs under the default profile: unshare, keyctl, add_key, bpf and mount get EPERM', async () => {
    const out = await probe([]);
    assert.match(out, /^Seccomp:\s+2$/m, 'a filter is on');
    for (const call of ['keyctl', 'add_key', 'bpf', 'mount', 'unshare']) assert.match(out, new RegExp(`^${call}=EPERM$`, 'm'), `${call} refused: ${out}`);
    assert.doesNotMatch(out, /unshare-cli=0/, 'unshare -U true fails');
  });

  test('a privileged container runs unconfined, as in Docker', async () => {
    const out = await probe(['--privileged']);
    assert.match(out, /^Seccomp:\s+0$/m);
    for (const call of ['keyctl', 'add_key', 'bpf', 'mount', 'unshare']) assert.doesNotMatch(out, new RegExp(`^${call}=EPERM$`, 'm'), `${call} reaches the kernel: ${out}`);
    assert.match(out, /^mount=0$/m);
    assert.match(out, /unshare-cli=0/);
  });

  test("the OCI bundle: Docker's masked paths with powercap, the profile's rules; none for a privileged container", async () => {
    const bundle = async (extra: string[]) => {
      const id = (await stack.docker(['run', '-d', ...extra, 'busybox', 'sleep', '30'])).stdout.trim();
      assert.match(id, /^[0-9a-f]{64}$/);
      const spec = JSON.parse(fs.readFileSync(path.join(stack.root, 'containers', id, 'config.json'), 'utf8'));
      assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
      return spec.linux;
    };
    const plain = await bundle([]);
    assert.ok(plain.maskedPaths.includes('/sys/devices/virtual/powercap'));
    assert.equal(plain.seccomp.defaultAction, 'SCMP_ACT_ERRNO');
    assert.ok(plain.seccomp.syscalls.length > 10);
    const privileged = await bundle(['--privileged']);
    assert.equal(privileged.seccomp, undefined);
    assert.equal(privileged.maskedPaths, undefined);
  });

  test('AppArmor: stevedore-default where the kernel has AppArmor, unconfined when privileged; no profile where it has none', async () => {
    const label = async (extra: string[]) => {
      const r = await stack.docker(['run', '--rm', ...extra, 'busybox', 'sh', '-c', 'cat /proc/self/attr/current 2>&1; echo " rc=$?"']);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    let hostHasAppArmor = false;
    try {
      hostHasAppArmor = fs.readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').startsWith('Y');
    } catch {
      // no AppArmor module
    }
    if (hostHasAppArmor) {
      assert.match(await label([]), /^stevedore-default \(enforce\)\s+rc=0$/);
      assert.match(await label(['--privileged']), /^unconfined\s+rc=0$/);
    } else {
      // The kernel has no security module answering the attribute: nothing to apply, and nothing pretends to.
      assert.match(await label([]), /Invalid argument\s+rc=1$/);
      assert.ok(!fs.existsSync(path.join(stack.root, 'run', 'stevedore-default.apparmor')), 'no profile written');
      const id = (await stack.docker(['run', '-d', 'busybox', 'sleep', '30'])).stdout.trim();
      const spec = JSON.parse(fs.readFileSync(path.join(stack.root, 'containers', id, 'config.json'), 'utf8'));
      assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
      assert.equal(spec.process.apparmorProfile, undefined);
    }
  });
});
