// The build farm's metrics, on the worker's Prometheus endpoint
// (STEVEDORE_BUILD_WORKER_METRICS_ADDR): each worker counts what it did,
// labelled with its node; the queue's depth is read from Redis when scraped.
import { Counter, Gauge, Histogram, once } from '@stevedore/metrics';

const SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

export const buildsRunning = once('stevedore_builds_running', () => new Gauge({ name: 'stevedore_builds_running', help: 'Builds a node runs now', labelNames: ['node'] }));
export const buildDuration = once(
  'stevedore_build_duration_seconds',
  () => new Histogram({ name: 'stevedore_build_duration_seconds', help: 'Builds from the moment a worker took them to their end, by outcome (built, failed, cancelled, moved)', labelNames: ['node', 'outcome'], buckets: SECONDS }),
);
export const stepDuration = once(
  'stevedore_build_step_duration_seconds',
  () => new Histogram({ name: 'stevedore_build_step_duration_seconds', help: 'Build steps, by instruction (a cached one included)', labelNames: ['node', 'instruction'], buckets: SECONDS }),
);
export const cacheLookups = once('stevedore_build_cache_total', () => new Counter({ name: 'stevedore_build_cache_total', help: 'Steps looked up in the build cache, by result (hit, miss)', labelNames: ['node', 'result'] }));
export const sharedStepWaits = once(
  'stevedore_build_shared_step_waits_total',
  () => new Counter({ name: 'stevedore_build_shared_step_waits_total', help: 'Steps a build waited for because another build was building the same one', labelNames: ['node'] }),
);
export const failovers = once('stevedore_build_failovers_total', () => new Counter({ name: 'stevedore_build_failovers_total', help: 'Builds taken again after the worker or node running them stopped', labelNames: ['node'] }));
export const handovers = once('stevedore_build_handovers_total', () => new Counter({ name: 'stevedore_build_handovers_total', help: "Builds a node handed to another that holds FROM's layers", labelNames: ['node'] }));

/** The queue's depth (waiting and delayed builds), read from Redis at each scrape. */
export function queueDepthGauge(read: () => Promise<number>): Gauge {
  return once('stevedore_build_queue_depth', () => {
    const gauge: Gauge = new Gauge({
      name: 'stevedore_build_queue_depth',
      help: 'Builds queued that no worker runs yet',
      async collect() {
        gauge.set(await read().catch(() => NaN));
      },
    });
    return gauge;
  });
}

const INSTRUCTIONS = new Set(['FROM', 'MAINTAINER', 'RUN', 'CMD', 'ENTRYPOINT', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'VOLUME', 'USER', 'WORKDIR', 'ONBUILD']);

/** A step's instruction as a label: one a Dockerfile made up is `OTHER` (a label per made-up word would grow without end). */
export function instructionLabel(instruction: string): string {
  return INSTRUCTIONS.has(instruction) ? instruction : 'OTHER';
}
