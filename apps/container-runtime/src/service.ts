// The container runtime's composition: its parts built with their
// collaborators, in dependency order; the containers found at start-up
// adopted; and the order in which a graceful stop lets go of them.
import * as os from 'node:os';
import * as path from 'node:path';
import { ContainerIndex, HeldImages, Membership, NodeHeartbeat, type NodeRecord } from '@stevedore/cluster';
import type { StevedoreConfig } from '@stevedore/config';
import { containers, images } from '@stevedore/contracts';
import { Gauge, once } from '@stevedore/metrics';
import { connectRedis, EventLog } from '@stevedore/redis';
import { connectService, grpcServiceStart, privateDatabase, requireTls, serve } from '@stevedore/service-kit';
import { adoptContainers } from './adoption';
import { installAppArmorProfile } from './apparmor';
import { Attachments } from './attachments';
import { BridgeNetwork } from './bridge-network';
import { ContainerCopies } from './container-copies';
import { ContainerImages, imageUseAccount } from './container-images';
import { ContainerLifecycle } from './container-lifecycle';
import { ContainerLogs } from './container-logs';
import { ContainerNetwork } from './container-network';
import { ContainerPaths } from './container-paths';
import { ContainerQueries } from './container-queries';
import { ContainerRuntimeRpc } from './container-runtime.rpc';
import { EventOutbox } from './event-outbox';
import { Execs } from './execs';
import { ExitMonitor } from './exit-monitor';
import { ContainerFreezer } from './freezer';
import { cgroupFacts, chooseOciRuntime, enableIpv4Forwarding, ipv4Forwarding } from './host-facts';
import { InterContainerPolicy } from './icc';
import { clusterSummary } from './cluster-place';
import { LayerCache } from './layer-cache';
import { hostCapabilities } from './oci-spec';
import { OciRuntimeRunner } from './oci-runtime';
import { loadSeccompProfile } from './seccomp';
import { ContainerDb } from './store/container-db';

/** On a cluster's node: what it registers as (its runtime reached at its address, on the port it listens on). */
function nodeRecord(config: StevedoreConfig): NodeRecord | undefined {
  if (!config.node) return undefined;
  return {
    name: config.node.name, address: config.node.address, runtime: `${config.node.address}:${config.serviceAddress('container-runtime').split(':').pop()}`,
    cpus: os.cpus().length, memoryBytes: os.totalmem(), labels: config.node.labels, joinedAt: new Date().toISOString(),
  };
}

/** Starts the service (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start = grpcServiceStart({
  name: 'container-runtime',
  async compose({ config, log }) {
    // Docker's default seccomp profile: without it the runtime does not start.
    const seccomp = loadSeccompProfile(config.seccompProfile);
    const paths = new ContainerPaths(config.root, config.runDir);
    const runner = new OciRuntimeRunner(chooseOciRuntime(config.runtime, (msg) => log.info(msg)), paths.runtimeRoot);
    log.info({ runtime: runner.runtime }, 'OCI runtime chosen');
    paths.prepare(log);
    const appArmorProfile = await installAppArmorProfile(config.runDir, config.appArmorTemplate);

    const db = new ContainerDb(privateDatabase(paths.database));
    const redis = connectRedis(config.redisUrl);
    const record = nodeRecord(config);
    const cluster = record && { node: record.name, address: record.address, index: new ContainerIndex(redis, config.redisPrefix) };
    const outbox = new EventOutbox(db, new EventLog(redis, config.redisPrefix, config.events), log, cluster);
    // What a killed runtime had not yet sent goes first.
    outbox.drain();
    // Bridged containers need forwarding: turned on at start-up, as Docker's daemon did (its --ip-forward, on by default).
    enableIpv4Forwarding(log);
    // Read once, as Docker 1.0 read its system facts at start-up: create warns from them.
    const host = { facts: { ...cgroupFacts(), ipv4Forwarding: ipv4Forwarding() }, caps: hostCapabilities(), seccomp, appArmorProfile };

    const freezer = new ContainerFreezer(db, paths, runner, log);
    const imageStore = connectService(images.ImageStoreService, config, 'image-store');
    // A cluster's node fetches the layers its containers need from the store's layer blobs, by digest.
    const node = config.node && config.layerBlobsAddress
      ? {
          name: config.node.name,
          layers: new LayerCache(config.node.name, path.join(config.root, 'layers'), config.layerBlobsAddress, requireTls(config.layerBlobsAddress, config.grpcTls), log),
          held: new HeldImages(redis, config.redisPrefix),
        }
      : undefined;
    const containerImages = new ContainerImages(imageStore, () => imageUseAccount(db, (id) => freezer.isStarting(id)), log, node);
    const bridge = new BridgeNetwork({ bridge: config.bridge.name, subnet: config.bridge.subnet, root: config.root });
    const network = new ContainerNetwork(db, bridge, new InterContainerPolicy(config.bridge.name, config.bridge.icc));
    const exits = new ExitMonitor({ db, paths, runner, outbox, images: containerImages, network, log });
    const attachments = new Attachments(db, paths, exits);
    const lifecycle = new ContainerLifecycle({
      db, paths, images: containerImages, runner, outbox, exits, network, freezer, attachments, host, logLimits: config.containerLogs, log, cluster,
    });
    const queries = new ContainerQueries({ db, paths, images: containerImages, runner, network, freezer });
    const copies = new ContainerCopies({ db, paths, images: containerImages, exits, freezer, outbox });
    const logs = new ContainerLogs(db, paths, config.containerLogs.maxFiles);
    const execs = new Execs({ db, paths, runner, outbox, attachments, hostCaps: host.caps, log });

    await adoptContainers({ db, paths, runner, exits, freezer, network, outbox, log });
    execs.adopt();
    containerImages.start();
    if (cluster) {
      // The cluster's index of this node's containers, rewritten from the records (a change lost with a crash is righted).
      const lost = await cluster.index.rewriteNode(cluster.node, db.all().map((r) => ({ id: r.id, name: r.name, active: r.status === 'running' || !r.started_at, summary: clusterSummary(r) })));
      if (lost.length) log.warn({ names: lost }, 'names another node\'s container took while this node was away');
    }

    const rpc = new ContainerRuntimeRpc({ lifecycle, queries, exits, copies, freezer, attachments, logs, execs, paths, runner, directRoot: config.node ? undefined : config.root });
    // Containers by state, read from the records when scraped.
    once('stevedore_containers', () => new Gauge({
      name: 'stevedore_containers', help: 'Containers of this runtime (a cluster\'s node), by state', labelNames: ['node', 'state'],
      collect() {
        const c = db.counts();
        const node = record?.name ?? '';
        this.set({ node, state: 'running' }, c.running - c.paused);
        this.set({ node, state: 'paused' }, c.paused);
        this.set({ node, state: 'stopped' }, c.total - c.running);
      },
    }));
    const heartbeat = record && new NodeHeartbeat(new Membership(redis, config.redisPrefix), record, () => {
      const c = db.counts();
      return { containers: c.total, running: c.running, paused: c.paused };
    }, log);
    await heartbeat?.start();
    return {
      bindings: [serve(containers.ContainerRuntimeService, log, rpc.handlers())],
      async stop() {
        // Copies in progress ended with the gRPC server's calls: their containers are thawed as they go (waited for, boundedly).
        await heartbeat?.stop();
        await freezer.copiesEnded(5000);
        await lifecycle.stopAll();
        exits.close();
        execs.close();
        await outbox.flushed(2000);
        outbox.close();
        containerImages.close();
        db.close();
        await redis.quit().catch(() => undefined);
      },
    };
  },
});
