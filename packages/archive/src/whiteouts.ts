// Overlayfs' whiteouts in a layer directory: a deleted file is a 0/0
// character device, an opaque directory carries trusted.overlay.opaque=y.
// In a tar diff they are `.wh.NAME` files and a `.wh..wh..opq` entry.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/** Creates overlay whiteouts (0/0 character devices) at these paths. */
export async function makeWhiteouts(paths: string[]): Promise<void> {
  for (let i = 0; i < paths.length; i += 200) {
    const batch = paths.slice(i, i + 200);
    await run('sh', ['-c', 'for p; do mknod -m 0 "$p" c 0 0 || exit 1; done', 'mknod', ...batch]);
  }
}

/** Marks directories opaque for overlayfs. */
export async function markOpaque(dirs: string[]): Promise<void> {
  for (let i = 0; i < dirs.length; i += 200) {
    await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', ...dirs.slice(i, i + 200)]);
  }
}

function parseGetfattr(stdout: string): Set<string> {
  const dirs = new Set<string>();
  let current: string | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) current = line.slice(8);
    else if (current && line.startsWith('trusted.overlay.opaque="y"')) dirs.add(current.replace(/\/$/, ''));
  }
  return dirs;
}

/** The opaque directories below `root` (absolute paths). */
export async function findOpaque(root: string): Promise<Set<string>> {
  try {
    const { stdout } = await run('getfattr', ['-R', '-P', '--absolute-names', '-n', 'trusted.overlay.opaque', root], { maxBuffer: 64 * 1024 * 1024 });
    return parseGetfattr(stdout);
  } catch (err) {
    // getfattr exits 1 when some file lacks the attribute; its output is still complete.
    const stdout = (err as { stdout?: string }).stdout;
    if (stdout === undefined) throw err;
    return parseGetfattr(stdout);
  }
}
