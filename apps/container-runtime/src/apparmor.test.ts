import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_APPARMOR_TEMPLATE, DEFAULT_SECCOMP_PROFILE } from '@stevedore/config';
import { APPARMOR_PROFILE, hostHasAppArmor, parserVersion, profileData, renderProfile, templateFromGoSource } from './apparmor';
import { buildSpec } from './oci-spec';
import { loadSeccompProfile } from './seccomp';

const template = () => templateFromGoSource(fs.readFileSync(DEFAULT_APPARMOR_TEMPLATE, 'utf8'));

test("Docker's template (installed by set-up) filled as Docker fills it", () => {
  const text = renderProfile(template(), { ...profileData(300008), daemonProfile: 'unconfined' });
  assert.ok(!text.includes('{{'), 'every action filled');
  assert.match(text, /^profile stevedore-default flags=\(attach_disconnected,mediate_deleted\) \{$/m);
  assert.match(text, /#include <tunables\/global>/, 'the host has tunables/global (Debian\'s apparmor package)');
  assert.match(text, /^\s+#include <abstractions\/base>$/m);
  for (const rule of ['deny mount,', 'deny @{PROC}/sysrq-trigger rwklx,', 'deny /sys/firmware/** rwklx,', 'signal (receive) peer=unconfined,', 'signal (send,receive) peer=stevedore-default,', 'ptrace (trace,read,tracedby,readby) peer=stevedore-default,'])
    assert.ok(text.includes(rule), rule);
  // An older parser gets neither the signal nor the ptrace rules, as in Docker.
  const old = renderProfile(template(), { ...profileData(208000), daemonProfile: 'unconfined' });
  assert.ok(!old.includes('signal (') && !old.includes('ptrace ('));
  assert.ok(old.includes('deny mount,'));
});

test('the filled profile compiles with apparmor_parser (no kernel needed)', () => {
  const version = parserVersion(execFileSync('apparmor_parser', ['--version'], { encoding: 'utf8' }));
  assert.ok(version >= 200000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apparmor-'));
  try {
    const file = path.join(dir, 'profile');
    fs.writeFileSync(file, renderProfile(template(), profileData(version)));
    // -Q: do not load into the kernel; -K: no cache; -S: the compiled policy to stdout.
    const compiled = spawnSync('apparmor_parser', ['-Q', '-K', '-S', file], { maxBuffer: 64 << 20 });
    assert.equal(compiled.status, 0, compiled.stderr.toString());
    assert.ok(compiled.stdout.length > 1000, 'a compiled policy');
    fs.writeFileSync(file, renderProfile(template(), profileData(version)).replace('deny mount,', 'deny mount, oops'));
    assert.notEqual(spawnSync('apparmor_parser', ['-Q', '-K', '-S', file]).status, 0, 'the parser does check');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a template with an action Stevedore does not know is refused, not mis-read', () => {
  const data = profileData(300000);
  assert.throws(() => renderProfile('profile {{.Name}} {{printf "%s" .Name}}', data), /cannot fill: \{\{printf/);
  assert.throws(() => renderProfile('{{.Unknown}}', data), /uses \.Unknown/);
  assert.throws(() => renderProfile('{{if ge .Version 1}}x', data), /not closed/);
  assert.throws(() => templateFromGoSource('package x'), /no baseTemplate/);
  assert.equal(parserVersion('AppArmor parser version 2.13.3\nCopyright'), 213003);
});

test('the profile is in the spec of a container that is not privileged, never of a privileged one', () => {
  const input = {
    id: 'c'.repeat(64),
    rootfs: '/r',
    config: { Cmd: ['true'] },
    hostConfig: {},
    user: { uid: 0, gid: 0, additionalGids: [], home: '/' },
    hostname: 'h',
    etcFiles: { hostname: '/h', hosts: '/hs', resolvConf: '/rc' },
    hostCaps: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
    seccomp: loadSeccompProfile(DEFAULT_SECCOMP_PROFILE),
  };
  const process = (spec: object) => (spec as { process: { apparmorProfile?: string } }).process;
  assert.equal(process(buildSpec({ ...input, appArmorProfile: APPARMOR_PROFILE })).apparmorProfile, 'stevedore-default');
  assert.equal(process(buildSpec({ ...input, hostConfig: { Privileged: true }, appArmorProfile: APPARMOR_PROFILE })).apparmorProfile, undefined);
  assert.equal(process(buildSpec(input)).apparmorProfile, undefined, 'a host without AppArmor');
});

test('AppArmor is detected from the kernel module parameter', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apparmor-'));
  try {
    const file = path.join(dir, 'enabled');
    fs.writeFileSync(file, 'Y\n');
    assert.equal(hostHasAppArmor(file), true);
    fs.writeFileSync(file, 'N\n');
    assert.equal(hostHasAppArmor(file), false);
    assert.equal(hostHasAppArmor(path.join(dir, 'missing')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
