// What the host shows of a stack while it runs and after it is gone: the
// processes naming its data root, a process's command line and memory, the
// mounts below a directory, the veths on a bridge.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/** Whether a process of this PID exists. */
export function pidRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A process's resident memory, in KiB. */
export function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

/** Mount points whose target is `dir` or below it, sorted. */
export function mountsBelow(dir: string): string[] {
  const base = dir.replace(/\/+$/, '');
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => Boolean(m) && (m === base || m.startsWith(`${base}/`)))
    .sort();
}

/** The host ends of the veth pairs on a bridge (none when the bridge is not there yet). */
export function vethsOn(bridge: string): string[] {
  if (!fs.existsSync(`/sys/class/net/${bridge}`)) return [];
  const out = spawnSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1]?.split('@')[0] ?? l);
}

/** Processes whose command line names this path. */
export function processesMentioning(text: string): Array<{ pid: number; cmd: string }> {
  const out: Array<{ pid: number; cmd: string }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(text)) out.push({ pid: Number(entry), cmd });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export function pidCommand(pid: number): string {
  return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
}
