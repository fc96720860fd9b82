// A private redis-server on a unix socket in a temporary directory, for the
// tests of what is built on Redis (its semantics are the point: no fake).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface ScratchRedis {
  /** unix:///…/redis.sock */
  url: string;
  stop(): void;
}

export async function startScratchRedis(name: string): Promise<ScratchRedis> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const socket = path.join(dir, 'redis.sock');
  const server = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  if (!fs.existsSync(socket)) throw new Error('redis-server did not start');
  return {
    url: `unix://${socket}`,
    stop: () => {
      server.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
