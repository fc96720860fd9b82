// Prometheus metrics. Every service records into its process's registry
// (prom-client's default one: one service per process, or every service of
// a small host's single process, each metric named for what it counts), and
// serves it at `GET /metrics` on the address its setting gives
// (`STEVEDORE_<SERVICE>_METRICS_ADDR`); none is served without one.
import * as http from 'node:http';
import type { Logger } from '@stevedore/logging';
import { collectDefaultMetrics, Counter, Gauge, Histogram, register } from 'prom-client';

export { Counter, Gauge, Histogram };

let defaultsCollected = false;

/** Serves this process's metrics on `address` (host:port, plain HTTP); a port that cannot be had is a warning, not a failure. */
export async function serveMetrics(address: string | undefined, log: Logger): Promise<http.Server | undefined> {
  if (!address) return undefined;
  if (!defaultsCollected) {
    collectDefaultMetrics();
    defaultsCollected = true;
  }
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') return void res.writeHead(404).end();
    register.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': register.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  const colon = address.lastIndexOf(':');
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(address.slice(colon + 1)), address.slice(0, colon), () => resolve());
    });
  } catch (err) {
    log.warn({ address, err: (err as Error).message }, 'metrics not served');
    return undefined;
  }
  log.info({ address }, 'metrics served at /metrics');
  return server;
}

/** A metric made once per process, whichever part asks first (a service may be composed twice in one process's life). */
export function once<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}
