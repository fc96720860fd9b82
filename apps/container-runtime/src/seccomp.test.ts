import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SECCOMP_PROFILE } from '@stevedore/config';
import { loadSeccompProfile, seccompFor, type OciSeccomp, type SeccompProfile } from './seccomp';

const DEFAULT_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

/** Whether some rule allows `name` whatever its arguments. */
const allowsAlways = (s: OciSeccomp, name: string) => s.syscalls.some((r) => r.action === 'SCMP_ACT_ALLOW' && r.names.includes(name) && !r.args);

test("Docker's profile (installed by set-up) refuses unshare, mount, keyctl, add_key and bpf to a default container", () => {
  const profile = loadSeccompProfile(DEFAULT_SECCOMP_PROFILE);
  const s = seccompFor(profile, DEFAULT_CAPS, 'x64', '6.1.0');
  assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
  assert.deepEqual(s.architectures.slice(0, 1), ['SCMP_ARCH_X86_64']);
  assert.ok(s.architectures.includes('SCMP_ARCH_X86') && s.architectures.includes('SCMP_ARCH_X32'));
  for (const name of ['unshare', 'mount', 'umount2', 'keyctl', 'add_key', 'request_key', 'bpf', 'setns', 'kexec_load', 'init_module'])
    assert.ok(!allowsAlways(s, name), `${name} is refused`);
  for (const name of ['read', 'write', 'openat', 'execve', 'arch_prctl', 'chroot']) assert.ok(allowsAlways(s, name), `${name} is allowed`);
  // clone is allowed without the namespace flags only.
  const clone = s.syscalls.find((r) => r.names.includes('clone'));
  assert.ok(clone?.args?.length, 'clone is allowed on a condition of its flags');

  const admin = seccompFor(profile, [...DEFAULT_CAPS, 'CAP_SYS_ADMIN'], 'x64', '6.1.0');
  for (const name of ['unshare', 'mount', 'setns', 'bpf']) assert.ok(allowsAlways(admin, name), `${name} with CAP_SYS_ADMIN`);
});

test('rules kept by architecture, capabilities (all included, none excluded) and kernel', () => {
  const profile: SeccompProfile = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: [{ architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] }],
    syscalls: [
      { names: ['a'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
      { names: ['b'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
      { names: ['c'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_X', 'CAP_Y'] } },
      { names: ['d'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_X'] } },
      { names: ['e'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.8' } },
      { name: 'f', action: 'SCMP_ACT_ALLOW' },
    ],
  };
  const names = (s: OciSeccomp) => s.syscalls.map((r) => r.names[0]);
  assert.deepEqual(names(seccompFor(profile, ['CAP_X'], 'arm64', '5.4.0')), ['b', 'f']);
  assert.deepEqual(names(seccompFor(profile, ['CAP_X', 'CAP_Y'], 'x64', '5.10.1-foo')), ['a', 'c', 'e', 'f']);
  assert.deepEqual(names(seccompFor(profile, [], 'x64', '5.8')), ['a', 'd', 'e', 'f']);
  const arm = seccompFor(profile, [], 'arm64', '6.0');
  assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.equal(arm.defaultErrnoRet, 1);
});
