// The docker CLI's own share of `docker exec c true`: the same command
// against a server that answers every request it sends at once (the ping,
// the container's inspect, the exec's create, its start with an empty
// stream, its inspect). No engine's exec can take less than this through
// the CLI, so it bounds the ratio an engine can reach against another.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

const EXEC_ID = 'e'.repeat(64);

function answer(req: http.IncomingMessage, res: http.ServerResponse): void {
  const json = (status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Api-Version': '1.12' });
    res.end(JSON.stringify(body));
  };
  req.resume();
  const url = req.url ?? '';
  if (url === '/_ping') {
    res.writeHead(200, { 'Api-Version': '1.12', 'Content-Type': 'text/plain' });
    res.end(req.method === 'HEAD' ? undefined : 'OK');
  } else if (/\/containers\/[^/]+\/json$/.test(url)) {
    json(200, { Id: 'c'.repeat(64), State: { Running: true, Paused: false, Restarting: false }, Config: { Tty: false } });
  } else if (/\/containers\/[^/]+\/exec$/.test(url)) {
    json(201, { Id: EXEC_ID });
  } else if (url.endsWith(`/exec/${EXEC_ID}/json`)) {
    json(200, { ID: EXEC_ID, Running: false, ExitCode: 0, ProcessConfig: { entrypoint: 'true', arguments: [], tty: false } });
  } else {
    json(404, { message: `not served here: ${req.method} ${url}` });
  }
}

/** Median ms of `runs` runs of `docker exec c true` against a server that answers at once. */
export async function cliExecFloorMs(runs: number): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-cli-floor-'));
  const socket = path.join(dir, 'floor.sock');
  const server = http.createServer(answer);
  // The exec's start: answered 101 and its stream ended at once (the process has no output).
  server.on('upgrade', (_req, conn) => {
    conn.end('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    const times: number[] = [];
    for (let i = 0; i <= runs; i++) {
      const t = process.hrtime.bigint();
      // (Not spawnSync: the server answering it runs in this process.)
      const r = await new Promise<number | null>((resolve) => {
        spawn('docker', ['exec', 'c', 'true'], { env: { ...process.env, DOCKER_HOST: `unix://${socket}` }, stdio: 'ignore' }).on('exit', resolve);
      });
      if (r !== 0) throw new Error(`docker exec against the floor server exited ${r}`);
      if (i > 0) times.push(Number(process.hrtime.bigint() - t) / 1e6); // the first is a warm-up
    }
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
