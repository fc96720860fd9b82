// Round trips per API call. For each request of a typical session (the
// CLI's ping, the lists and inspects, the life of a container, a tag and its
// removal, a two-step build, a read of the events), the gRPC calls it
// caused between Stevedore's processes and the Redis commands run while it
// was answered. The gRPC calls are counted from the services' debug log
// lines, which carry the request id the API edge passes on (the request
// sends its own `X-Request-Id`); the Redis commands from `redis-cli
// MONITOR`, by time window (the requests go one at a time, 100 ms apart;
// an idle stack runs about four commands a second of its own, so a window
// may hold one that is not the request's). Stevedore only: the Docker
// engine's calls to containerd are not comparable one for one.
//
//   node bench/dist/round-trips.js
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { busyboxTar, importBusybox, startStevedore, type Engine } from './engines';
import { json, send } from './http-client';

interface Step {
  label: string;
  requestId: string;
  status: number;
  /** Seconds since the epoch, as MONITOR prints them. */
  from: number;
  to: number;
}

interface Counted {
  label: string;
  status: number;
  ms: number;
  grpc: Record<string, number>;
  redis: Record<string, number>;
}

const now = () => (performance.timeOrigin + performance.now()) / 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const listed = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, n]) => (n > 1 ? `${k} ×${n}` : k))
    .join(', ') || '—';

/** Redis's MONITOR output: one line per command, `<epoch seconds> [db client] "command" args…`. */
function monitor(socket: string): { commands: Array<{ at: number; command: string }>; stop: () => void; ready: Promise<void> } {
  const child = spawn('redis-cli', ['-s', socket, 'monitor'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const commands: Array<{ at: number; command: string }> = [];
  let rest = '';
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === 'OK') markReady();
      const m = /^(\d+\.\d+) \[[^\]]*\] "([^"]+)"/.exec(line);
      if (m) commands.push({ at: Number(m[1]), command: m[2].toLowerCase() });
    }
  });
  return { commands, stop: () => child.kill(), ready };
}

/** gRPC calls per request id, from every service's log (`call`, `stream opened`, or a refusal). */
function grpcCalls(logDir: string): Map<string, Record<string, number>> {
  const byRequest = new Map<string, Record<string, number>>();
  for (const file of fs.readdirSync(logDir)) {
    for (const line of fs.readFileSync(path.join(logDir, file), 'utf8').split('\n')) {
      if (!line.includes('"rpc"') || !line.includes('"rt-')) continue;
      let entry: { reqId?: string; rpc?: string; service?: string; msg?: string };
      try {
        entry = JSON.parse(line);
      } catch {
        continue;
      }
      if (!entry.reqId?.startsWith('rt-') || !entry.rpc || !['call', 'stream opened', 'call refused', 'call failed'].includes(entry.msg ?? '')) continue;
      const counts = byRequest.get(entry.reqId) ?? {};
      const key = `${entry.service}.${entry.rpc}`;
      counts[key] = (counts[key] ?? 0) + 1;
      byRequest.set(entry.reqId, counts);
    }
  }
  return byRequest;
}

async function session(e: Engine, dir: string): Promise<Step[]> {
  const steps: Step[] = [];
  let n = 0;
  const call = async (label: string, method: string, p: string, body?: unknown, file?: string): Promise<any> => {
    const requestId = `rt-${++n}`;
    const from = now();
    const headers = { 'X-Request-Id': requestId };
    const r = file ? await send(e.socket, method, p, { file, headers }) : await json(e.socket, method, p, body, headers);
    steps.push({ label, requestId, status: r.status, from, to: now() });
    await sleep(100);
    return r.body;
  };

  await call('GET /_ping', 'GET', '/_ping');
  await call('GET /version', 'GET', '/v1.12/version');
  await call('GET /info', 'GET', '/v1.12/info');
  await call('GET /images/json', 'GET', '/v1.12/images/json');
  await call('GET /images/{name}/json', 'GET', '/v1.12/images/busybox/json');
  await call('GET /images/{name}/history', 'GET', '/v1.12/images/busybox/history');
  await call('GET /containers/json?all=1, none', 'GET', '/v1.12/containers/json?all=1');
  const created = await call('POST /containers/create', 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: ['sleep', '30'] });
  const id = created.Id as string;
  await call('POST /containers/{id}/start', 'POST', `/v1.12/containers/${id}/start`, {});
  await call('GET /containers/json, one running', 'GET', '/v1.12/containers/json');
  await call('GET /containers/{id}/json', 'GET', `/v1.12/containers/${id}/json`);
  await call('GET /containers/{id}/top', 'GET', `/v1.12/containers/${id}/top`);
  await call('GET /containers/{id}/changes', 'GET', `/v1.12/containers/${id}/changes`);
  await call('POST /containers/{id}/kill', 'POST', `/v1.12/containers/${id}/kill`);
  await call('POST /containers/{id}/wait', 'POST', `/v1.12/containers/${id}/wait`);
  await call('GET /containers/{id}/logs', 'GET', `/v1.12/containers/${id}/logs?stdout=1&stderr=1`);
  await call('DELETE /containers/{id}', 'DELETE', `/v1.12/containers/${id}`);
  await call('POST /images/{name}/tag', 'POST', '/v1.12/images/busybox/tag?repo=rt&tag=one');
  await call('DELETE /images/{name} (untag)', 'DELETE', '/v1.12/images/rt:one');

  const context = path.join(dir, 'context');
  fs.mkdirSync(context);
  fs.writeFileSync(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN true\nCMD ["true"]\n');
  const contextTar = path.join(dir, 'context.tar');
  await new Promise<void>((resolve, reject) =>
    spawn('tar', ['-C', context, '-cf', contextTar, 'Dockerfile']).on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar: ${code}`)))),
  );
  await call('POST /build (FROM, RUN, CMD), cold', 'POST', '/v1.12/build?t=rt-build&rm=1', undefined, contextTar);
  await call('POST /build, the same, cached', 'POST', '/v1.12/build?t=rt-build&rm=1', undefined, contextTar);
  const since = Math.floor(Date.now() / 1000) - 60;
  await call('GET /events?since=…&until=… (past events)', 'GET', `/v1.12/events?since=${since}&until=${Math.floor(Date.now() / 1000)}`);
  return steps;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-round-trips-'));
  const e = await startStevedore({ STEVEDORE_LOG_LEVEL: 'debug' });
  const root = path.dirname(e.socket);
  let counted: Counted[];
  try {
    await importBusybox(e, busyboxTar(dir, ['sh', 'true', 'sleep']));
    const mon = monitor(path.join(root, 'run', 'redis.sock'));
    await mon.ready;
    const steps = await session(e, dir);
    await sleep(500); // the last log lines written
    mon.stop();
    const grpc = grpcCalls(path.join(root, 'logs'));
    counted = steps.map((s) => {
      const redis: Record<string, number> = {};
      for (const c of mon.commands) if (c.at >= s.from && c.at <= s.to) redis[c.command] = (redis[c.command] ?? 0) + 1;
      return { label: s.label, status: s.status, ms: Math.round((s.to - s.from) * 1e5) / 100, grpc: grpc.get(s.requestId) ?? {}, redis };
    });
  } finally {
    await e.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const date = new Date().toISOString();
  const results = path.join(__dirname, '..', 'results');
  fs.writeFileSync(path.join(results, 'round-trips.json'), `${JSON.stringify({ benchmark: 'round-trips', date, engine: e.version, calls: counted }, null, 2)}\n`);
  const lines = [
    '# Round trips per API call',
    '',
    `${date}, ${os.cpus().length} cores, kernel ${os.release()}; ${e.version}. gRPC calls between Stevedore's processes caused by each request (from the services' logs, by request id) and the Redis commands run while it was answered (MONITOR, by time window: one may be the idle stack's own). The times are each call's first, with debug logging on: not the benchmarks' figures. \`node bench/dist/round-trips.js\`.`,
    '',
    '| API call | status | ms (first, debug log) | gRPC calls | which | Redis commands | which |',
    '|---|---|---|---|---|---|---|',
    ...counted.map((c) => `| ${c.label} | ${c.status} | ${c.ms} | ${total(c.grpc)} | ${listed(c.grpc)} | ${total(c.redis)} | ${listed(c.redis)} |`),
    '',
  ];
  fs.writeFileSync(path.join(results, 'round-trips.md'), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
