// iptables from the runtime: one rule command, or a batch of changes to a
// table in one call (`iptables-restore` without flushing). `-w` waits for
// the lock another program (the CNI plugins, another stack) may hold.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function iptables(args: string[]): Promise<string> {
  return (await run('iptables', ['-w', ...args])).stdout;
}

export async function iptablesRestore(table: 'filter' | 'nat', lines: string[]): Promise<void> {
  if (!lines.length) return;
  await new Promise<void>((resolve, reject) => {
    const child = execFile('iptables-restore', ['--noflush', '-w'], (err, _out, stderr) => (err ? reject(new Error(`iptables-restore: ${stderr.trim() || err.message}`)) : resolve()));
    child.stdin?.end([`*${table}`, ...lines, 'COMMIT', ''].join('\n'));
  });
}
