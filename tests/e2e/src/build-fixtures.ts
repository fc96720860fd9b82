// What the build tests share: a build context written to a directory, and
// what a build leaves behind to look at (the stack's containers, its Redis).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shortTempDir, type Stack } from './harness';

/** A build context directory holding `files` (name → content). */
export function context(files: Record<string, string | Buffer>): string {
  const dir = shortTempDir('bctx-');
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

/** A command to the stack's own Redis. */
export function redisCli(stack: Stack, ...args: string[]): string {
  return execFileSync('redis-cli', ['-s', path.join(stack.root, 'run', 'redis.sock'), ...args], { encoding: 'utf8' });
}

export async function containerNames(stack: Stack): Promise<string[]> {
  return (await stack.docker(['ps', '-a', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean).sort();
}
