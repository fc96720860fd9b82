// Docker's default seccomp profile on every container that is not
// privileged. The profile itself is Docker's own file, taken from Debian's
// package of the Docker engine's source (the launcher extracts it at set-up:
// see `ensure_docker_profiles` in ./stevedore); here it is read and turned
// into the OCI runtime's form for one container, as Docker does: the rules
// kept are those whose conditions (architecture, capabilities, kernel) the
// container meets.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { refused } from '@stevedore/errors';

/** Where set-up puts the profile; STEVEDORE_SECCOMP_PROFILE names another file. */

interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

interface Conditions {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

interface ProfileRule {
  names?: string[];
  name?: string;
  action: string;
  args?: SeccompArg[] | null;
  errnoRet?: number;
  includes?: Conditions;
  excludes?: Conditions;
}

/** Docker's profile format (profiles/seccomp/default.json). */
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: Array<{ architecture: string; subArchitectures?: string[] | null }>;
  syscalls: ProfileRule[];
}

/** The OCI runtime's `linux.seccomp`. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: Array<{ names: string[]; action: string; args?: SeccompArg[]; errnoRet?: number }>;
}

/** Reads the profile; an engine without it would run every container unconfined, so it does not start. */
export function loadSeccompProfile(file: string): SeccompProfile {
  let profile: SeccompProfile;
  try {
    profile = JSON.parse(fs.readFileSync(file, 'utf8')) as SeccompProfile;
  } catch (err) {
    throw refused(`Cannot read the default seccomp profile ${file} (./stevedore setup installs it): ${(err as Error).message}`);
  }
  if (typeof profile.defaultAction !== 'string' || !Array.isArray(profile.syscalls)) throw refused(`${file} is not a seccomp profile`);
  return profile;
}

/** Node's name of this machine's architecture, as the profile names them (Go's GOARCH) and as seccomp does. */
const ARCHES: Record<string, { go: string; seccomp: string }> = {
  x64: { go: 'amd64', seccomp: 'SCMP_ARCH_X86_64' },
  arm64: { go: 'arm64', seccomp: 'SCMP_ARCH_AARCH64' },
  ia32: { go: '386', seccomp: 'SCMP_ARCH_X86' },
  arm: { go: 'arm', seccomp: 'SCMP_ARCH_ARM' },
  s390x: { go: 's390x', seccomp: 'SCMP_ARCH_S390X' },
  ppc64: { go: 'ppc64le', seccomp: 'SCMP_ARCH_PPC64LE' },
};

/** `5.8` ≤ `6.18.44-fc`: the kernel's version against a rule's minimum. */
function kernelAtLeast(release: string, min: string): boolean {
  const have = release.split(/[.-]/).map((n) => Number.parseInt(n, 10) || 0);
  const want = min.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < want.length; i++) if ((have[i] ?? 0) !== want[i]) return (have[i] ?? 0) > want[i];
  return true;
}

/** The profile for a container with capabilities `caps`, on this machine. */
export function seccompFor(profile: SeccompProfile, caps: string[], arch = process.arch, kernel = os.release()): OciSeccomp {
  const machine = ARCHES[arch];
  const archEntry = profile.archMap?.find((a) => a.architecture === machine?.seccomp);
  const has = new Set(caps);
  const syscalls: OciSeccomp['syscalls'] = [];
  for (const rule of profile.syscalls) {
    const inc = rule.includes ?? {};
    const exc = rule.excludes ?? {};
    if (inc.arches?.length && !inc.arches.includes(machine?.go ?? '')) continue;
    if (exc.arches?.includes(machine?.go ?? '')) continue;
    if (inc.caps?.length && !inc.caps.every((c) => has.has(c))) continue;
    if (exc.caps?.some((c) => has.has(c))) continue;
    if (inc.minKernel && !kernelAtLeast(kernel, inc.minKernel)) continue;
    const names = rule.names?.length ? rule.names : rule.name ? [rule.name] : [];
    if (names.length === 0) continue;
    syscalls.push({ names, action: rule.action, ...(rule.args?.length ? { args: rule.args } : {}), ...(rule.errnoRet !== undefined ? { errnoRet: rule.errnoRet } : {}) });
  }
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures: archEntry ? [archEntry.architecture, ...(archEntry.subArchitectures ?? [])] : [],
    syscalls,
  };
}
