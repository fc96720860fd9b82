// API benchmark: GET /_ping and GET /version latency (sequential, keep-alive)
// and requests per second at 64 concurrent clients, through the unix socket,
// Stevedore and the Docker engine measured in one run, interleaved.
//
//   node bench/dist/api.js [--requests N] [--block B] [--seconds S] [--rounds R]
import * as http from 'node:http';
import { startDocker, startStevedore, type Engine } from './engines';
import { getOk } from './http-client';
import { option, row, summarize, writeReport, type Row } from './stats';

const REQUESTS = option('--requests', 2000);
const SECONDS = option('--seconds', 3);
const ROUNDS = option('--rounds', 3);
/** Requests an engine answers before the other takes its turn. */
const BLOCK = option('--block', 100);
const PATHS = ['/_ping', '/v1.12/version'];


/** Sequential requests on one keep-alive connection, each timed. */
async function latencies(agent: http.Agent, engine: Engine, urlPath: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await getOk(agent, engine.socket, urlPath);
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out;
}

async function throughput(engine: Engine, urlPath: string, clients: number, seconds: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const end = Date.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        await getOk(agent, engine.socket, urlPath);
        done++;
      }
    }),
  );
  agent.destroy();
  return done / seconds;
}

async function main(): Promise<void> {
  const [stevedore, docker] = [await startStevedore(), await startDocker()];
  const engines = [stevedore, docker];
  const samples = new Map<string, number[]>();
  const add = (key: string, values: number[]) => samples.set(key, [...(samples.get(key) ?? []), ...values]);
  const agents = new Map(engines.map((e) => [e.name, new http.Agent({ keepAlive: true, maxSockets: 1 })]));
  try {
    for (const e of engines) for (const p of PATHS) await latencies(agents.get(e.name)!, e, p, 50); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      // Latency in short blocks, the engines taking turns (and turns about who goes first): a
      // machine that drifts (frequency, another tenant) weighs on both alike.
      for (const p of PATHS) {
        for (let block = 0; block < REQUESTS / BLOCK; block++) {
          for (const e of block % 2 ? [...engines].reverse() : engines) add(`${e.name} ${p} latency`, await latencies(agents.get(e.name)!, e, p, BLOCK));
        }
      }
      for (const e of round % 2 ? [...engines].reverse() : engines) {
        for (const p of PATHS) add(`${e.name} ${p} rps`, [await throughput(e, p, 64, SECONDS)]);
      }
    }
  } finally {
    for (const a of agents.values()) a.destroy();
    await Promise.all(engines.map((e) => e.stop()));
  }

  const rows: Row[] = [];
  for (const p of PATHS) {
    const s = summarize(samples.get(`stevedore ${p} latency`)!);
    const d = summarize(samples.get(`docker ${p} latency`)!);
    rows.push(row(`GET ${p} latency, median`, 'ms', s.median, d.median, 'lower'));
    rows.push(row(`GET ${p} latency, p95`, 'ms', s.p95, d.p95, 'lower'));
    rows.push(row(`GET ${p} latency, p99`, 'ms', s.p99, d.p99, 'lower'));
    const sr = summarize(samples.get(`stevedore ${p} rps`)!).median;
    const dr = summarize(samples.get(`docker ${p} rps`)!).median;
    rows.push(row(`GET ${p} at 64 clients`, 'req/s', sr, dr, 'higher'));
  }
  writeReport('api', 'API benchmark', { stevedore: stevedore.version, docker: docker.version }, `${REQUESTS} sequential requests per path and engine per round on one keep-alive connection, in blocks of ${BLOCK} with the engines taking turns; ${SECONDS} s at 64 clients; ${ROUNDS} rounds.`, rows, { settings: { requests: REQUESTS, block: BLOCK, seconds: SECONDS, rounds: ROUNDS } });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
