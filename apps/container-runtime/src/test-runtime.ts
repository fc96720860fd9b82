// For unit tests: the runtime's parts, wired as service.ts wires them, over
// a real container database in a temporary directory and fakes of their
// neighbours: the event log (Redis), the image store's client, the OCI
// runtime and the bridge.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { images } from '@stevedore/contracts';
import { notFound, toGrpcError } from '@stevedore/errors';
import { createLogger } from '@stevedore/logging';
import type { EventLog, NewEvent } from '@stevedore/redis';
import { backendError } from '@stevedore/service-kit';
import { Attachments } from './attachments';
import type { BridgeNetwork } from './bridge-network';
import { ContainerCopies } from './container-copies';
import { ContainerImages, imageUseAccount, type ImageStoreCalls } from './container-images';
import { ContainerLifecycle } from './container-lifecycle';
import { ContainerNetwork } from './container-network';
import { ContainerPaths } from './container-paths';
import { ContainerQueries } from './container-queries';
import { EventOutbox } from './event-outbox';
import { ExitMonitor } from './exit-monitor';
import { ContainerFreezer } from './freezer';
import type { InterContainerPolicy } from './icc';
import type { OciRuntimeRunner } from './oci-runtime';
import type { SeccompProfile } from './seccomp';
import { ContainerDb, type ContainerRow } from './store/container-db';

export interface FakeImage {
  id: string;
  /** The names it is found by (besides its ID). */
  names: string[];
  layers: string[];
  config?: object;
  virtualSize?: number;
}

/** An image store that knows `images`, answering as the real one does, and noting every call. */
class FakeImageStore {
  readonly calls: Array<{ method: string; req: unknown }> = [];
  /** The accounts of image use it was sent (reconciliations). */
  readonly accounts: images.ImageUse[][] = [];
  /** The uses it holds, by container. */
  readonly uses = new Map<string, { image: string; running: boolean }>();

  constructor(readonly images: FakeImage[]) {}

  private find(name: string): FakeImage | undefined {
    return this.images.find((i) => i.id === name || i.names.includes(name) || i.names.includes(`${name}:latest`));
  }

  client(): ImageStoreCalls {
    const answer = <Res>(method: string, req: unknown, fn: () => Res): Promise<Res> => {
      this.calls.push({ method, req });
      return new Promise((resolve, reject) =>
        setImmediate(() => {
          try {
            resolve(fn());
          } catch (err) {
            // As a service's error reaches its client: over gRPC with its code and kind, read back as a StevedoreError.
            reject(backendError(Object.assign(new Error((err as Error).message), toGrpcError(err)), 'image-store'));
          }
        }),
      );
    };
    return {
      useImage: (req) =>
        answer('useImage', req, () => {
          const image = this.find(req.image);
          if (!image) throw notFound(`No such image: ${req.image}`);
          this.uses.set(req.user, { image: image.id, running: req.running });
          return { id: image.id, layers: image.layers, configJson: image.config ? JSON.stringify(image.config) : '', displayName: image.names[0] ?? image.id.slice(0, 12), layerRefs: [] };
        }),
      releaseImage: (req) =>
        answer('releaseImage', req, () => {
          this.uses.delete(req.user);
          return {};
        }),
      imageNames: (req) => answer('imageNames', req, () => ({ names: Object.fromEntries(req.ids.flatMap((id) => (this.find(id)?.names[0] ? [[id, this.find(id)!.names[0]]] : []))) })),
      inspect: (req) =>
        answer('inspect', req, () => {
          const image = this.find(req.name);
          if (!image) throw notFound(`No such image: ${req.name}`);
          return images.InspectImageResponse.fromPartial({ id: image.id, virtualSize: image.virtualSize ?? 0 });
        }),
      reconcileImageUse: (req) =>
        answer('reconcileImageUse', req, () => {
          this.accounts.push(req.uses);
          return { unknownImages: [], added: 0, dropped: 0 };
        }),
      connection: {
        getChannel: () => ({ getConnectivityState: () => grpc.connectivityState.READY, watchConnectivityState: () => undefined }),
        waitForReady: (_deadline, cb) => cb(),
      },
      close: () => undefined,
    };
  }

  /** The calls of one method, in order. */
  requests(method: string): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.req);
  }
}

/** An OCI runtime that notes what it is told; `onKill` plays the container's side of a signal. */
function fakeRunner(root: string, onKill: (id: string, signal: number) => void = () => undefined): OciRuntimeRunner & { commands: string[][] } {
  const commands: string[][] = [];
  return {
    commands,
    runtime: { name: 'runc', version: 'fake' },
    root,
    kill: async (id, signal) => {
      commands.push(['kill', id, String(signal)]);
      onKill(id, signal);
    },
    pause: async (id) => void commands.push(['pause', id]),
    resume: async (id) => void commands.push(['resume', id]),
    forceDelete: async (id) => void commands.push(['delete', '--force', id]),
    pids: async (id) => {
      commands.push(['ps', id]);
      return [];
    },
  };
}

export type TestRuntime = ReturnType<typeof testRuntime>;

/** The parts over fakes; `dispose` closes them and deletes the temporary directory. */
export function testRuntime(imagesKnown: FakeImage[], options: { onKill?: (id: string, signal: number) => void } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'container-runtime-'));
  const log = createLogger('test', 'silent');
  const paths = new ContainerPaths(dir, path.join(dir, 'run'));
  for (const d of [paths.root, paths.volumes, paths.trash, paths.runtimeRoot]) fs.mkdirSync(d, { recursive: true });
  const db = new ContainerDb(paths.database);
  const events: NewEvent[] = [];
  const eventLog = { append: async (e: NewEvent) => `${events.push(e)}-0` } as unknown as EventLog;
  const outbox = new EventOutbox(db, eventLog, log);
  const store = new FakeImageStore(imagesKnown);
  const runner = fakeRunner(paths.runtimeRoot, (id, signal) => options.onKill?.(id, signal));
  const bridgeCalls: string[] = [];
  const bridge = { detach: async (id: string) => void bridgeCalls.push(`detach ${id}`), netnsPath: (id: string) => `/run/netns/test-${id}` } as unknown as BridgeNetwork;
  const icc = { revokeLinks: async (id: string) => void bridgeCalls.push(`revoke ${id}`) } as unknown as InterContainerPolicy;
  const host = { facts: { version: '2' as const, memoryLimit: true, swapLimit: true, ipv4Forwarding: true }, caps: [], seccomp: {} as SeccompProfile };

  const freezer = new ContainerFreezer(db, paths, runner, log);
  const containerImages = new ContainerImages(store.client(), () => imageUseAccount(db, (id) => freezer.isStarting(id)), log);
  const network = new ContainerNetwork(db, bridge, icc);
  const exits = new ExitMonitor({ db, paths, runner, outbox, images: containerImages, network, log });
  const attachments = new Attachments(db, paths, exits);
  const lifecycle = new ContainerLifecycle({ db, paths, images: containerImages, runner, outbox, exits, network, freezer, attachments, host, logLimits: { maxSizeBytes: 1024, maxFiles: 2 }, log });
  const queries = new ContainerQueries({ db, paths, images: containerImages, runner, network, freezer });
  const copies = new ContainerCopies({ db, paths, images: containerImages, exits, freezer, outbox });

  return {
    dir, paths, db, store, runner, bridgeCalls, containerImages, freezer, network, exits, attachments, lifecycle, queries, copies, outbox, log,
    /** The events the event log has taken, once the outbox has sent what it holds. */
    async events(): Promise<NewEvent[]> {
      await outbox.flushed(2000);
      return events;
    },
    /** A container recorded directly, as if made by create (and started, with `status: 'running'`). */
    record(id: string, name: string, image: FakeImage, status: 'created' | 'running' | 'exited' = 'created', config: object = { Cmd: ['true'] }): ContainerRow {
      db.createContainer({ id, name, created: new Date().toISOString(), image_id: image.id, image_name: image.names[0] ?? image.id, config: JSON.stringify(config), host_config: '{}' });
      fs.mkdirSync(paths.dir(id), { recursive: true });
      if (status === 'running') db.markStarted(id, 4242, new Date().toISOString());
      if (status === 'exited') db.markExited(id, 0, new Date().toISOString());
      return db.get(id)!;
    },
    async dispose(): Promise<void> {
      await outbox.flushed(2000);
      outbox.close();
      containerImages.close();
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A container ID: 64 hex characters from a short seed. */
export const containerId = (seed: string): string => seed.padEnd(64, '0');
