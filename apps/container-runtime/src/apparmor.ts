// AppArmor, where the host has it: every container that is not privileged
// runs under `stevedore-default`, the profile Docker generates as
// `docker-default`. The profile's text is Docker's own template
// (profiles/apparmor/template.go of the engine's source, installed at set-up
// beside the seccomp profile: see `ensure_docker_profiles` in ./stevedore),
// filled in here as Docker fills it and loaded with apparmor_parser when the
// runtime starts. A host without AppArmor (no /sys/module/apparmor) skips
// all of it: seccomp, capabilities, masked paths and namespaces still apply.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { refused } from '@stevedore/errors';

/** Where set-up puts Docker's template; STEVEDORE_APPARMOR_TEMPLATE names another file. */
export const APPARMOR_PROFILE = 'stevedore-default';
const PROFILE_DIR = '/etc/apparmor.d';

export interface ProfileData {
  name: string;
  /** The profile the engine runs under: it may signal the containers. */
  daemonProfile: string;
  imports: string[];
  innerImports: string[];
  /** apparmor_parser's version as one number: major × 100000 + minor × 1000 + patch. */
  version: number;
}

/** True when the kernel has AppArmor switched on. */
export function hostHasAppArmor(enabledFile = '/sys/module/apparmor/parameters/enabled'): boolean {
  try {
    return fs.readFileSync(enabledFile, 'utf8').trim().startsWith('Y');
  } catch {
    return false;
  }
}

/** The template string of template.go (its `baseTemplate` constant). */
export function templateFromGoSource(source: string): string {
  const m = /const baseTemplate = `([^`]*)`/.exec(source);
  if (!m) throw new Error('no baseTemplate constant in the AppArmor template source');
  return m[1];
}

/** `AppArmor parser version 3.0.8` → 300008, as Docker compares it. */
export function parserVersion(output: string): number {
  const m = /version (\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  if (!m) throw new Error(`cannot read apparmor_parser's version from ${JSON.stringify(output.slice(0, 80))}`);
  return Number(m[1]) * 100_000 + Number(m[2]) * 1000 + Number(m[3] ?? 0);
}

type Node = string | { action: string; body: Node[] };

/** The template's actions nest only through `range` and `if`, each closed by `end`. */
function parse(template: string): Node[] {
  const parts = template.split(/{{(.*?)}}/s);
  const root: Node[] = [];
  const stack: Node[][] = [root];
  parts.forEach((part, i) => {
    const top = stack[stack.length - 1];
    if (i % 2 === 0) {
      if (part) top.push(part);
      return;
    }
    const action = part.trim();
    if (action === 'end') {
      if (stack.length === 1) throw new Error('{{end}} without an opening action in the AppArmor template');
      stack.pop();
    } else if (action.startsWith('range ') || action.startsWith('if ')) {
      const node = { action, body: [] as Node[] };
      top.push(node);
      stack.push(node.body);
    } else top.push({ action, body: [] });
  });
  if (stack.length !== 1) throw new Error('an action of the AppArmor template is not closed');
  return root;
}

const FIELDS: Record<string, (d: ProfileData) => string | number | string[]> = {
  '.Name': (d) => d.name,
  '.DaemonProfile': (d) => d.daemonProfile,
  '.Imports': (d) => d.imports,
  '.InnerImports': (d) => d.innerImports,
  '.Version': (d) => d.version,
};

function field(name: string, data: ProfileData): string | number | string[] {
  const get = FIELDS[name];
  if (!get) throw new Error(`the AppArmor template uses ${name}, which Stevedore does not fill`);
  return get(data);
}

/**
 * Fills the template as Go's text/template would for the constructs Docker's
 * template uses (`range $v := .List`, `if ge .Field N`, `.Field`, `$v`); any
 * other action is refused, so a changed template is noticed, not mis-read.
 */
export function renderProfile(template: string, data: ProfileData): string {
  const render = (nodes: Node[], vars: Record<string, string>): string =>
    nodes
      .map((n) => {
        if (typeof n === 'string') return n;
        const range = /^range \$(\w+) := (\.\w+)$/.exec(n.action);
        if (range) {
          const list = field(range[2], data);
          if (!Array.isArray(list)) throw new Error(`${range[2]} is not a list`);
          return list.map((v) => render(n.body, { ...vars, [range[1]]: v })).join('');
        }
        const cond = /^if ge (\.\w+) (\d+)$/.exec(n.action);
        if (cond) return Number(field(cond[1], data)) >= Number(cond[2]) ? render(n.body, vars) : '';
        const variable = /^\$(\w+)$/.exec(n.action);
        if (variable) {
          if (!(variable[1] in vars)) throw new Error(`$${variable[1]} is not defined in the AppArmor template`);
          return vars[variable[1]];
        }
        if (/^\.\w+$/.test(n.action)) return String(field(n.action, data));
        throw new Error(`the AppArmor template has an action Stevedore cannot fill: {{${n.action}}}`);
      })
      .join('');
  return render(parse(template), {});
}

/** What Docker puts in: the host's tunables and base abstraction when it has them, the engine's own profile. */
export function profileData(version: number, profileDir = PROFILE_DIR): ProfileData {
  let current = '';
  try {
    current = fs.readFileSync('/proc/self/attr/current', 'utf8');
  } catch {
    // no AppArmor attribute: the engine runs unconfined
  }
  const daemonProfile = current.split(' ')[0].trim() || 'unconfined';
  return {
    name: APPARMOR_PROFILE,
    daemonProfile,
    imports: [fs.existsSync(path.join(profileDir, 'tunables/global')) ? '#include <tunables/global>' : '@{PROC}=/proc/'],
    innerImports: fs.existsSync(path.join(profileDir, 'abstractions/base')) ? ['#include <abstractions/base>'] : [],
    version,
  };
}

const run = promisify(execFile);

/**
 * On a host with AppArmor: writes the profile under `dir` and loads it
 * (replacing an older one); returns the profile's name for the containers'
 * specs. Without AppArmor: undefined. A host with AppArmor where the profile
 * cannot be loaded stops the runtime: its containers would run unconfined.
 */
export async function installAppArmorProfile(dir: string, template: string): Promise<string | undefined> {
  if (!hostHasAppArmor()) return undefined;
  try {
    const { stdout } = await run('apparmor_parser', ['--version']);
    const text = renderProfile(templateFromGoSource(fs.readFileSync(template, 'utf8')), profileData(parserVersion(stdout)));
    const file = path.join(dir, `${APPARMOR_PROFILE}.apparmor`);
    fs.writeFileSync(file, text, { mode: 0o600 });
    await run('apparmor_parser', ['-Kr', file]);
    return APPARMOR_PROFILE;
  } catch (err) {
    throw refused(`This host has AppArmor, and the containers' profile could not be loaded (./stevedore setup installs the template and apparmor_parser): ${(err as Error).message}`);
  }
}
