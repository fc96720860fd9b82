// The intermediate containers of one build (BUILDER.md §7): each one's name
// is recorded before it is created, so that a sweep finds it whatever
// happens to this worker; the rm/forcerm rules then either remove it (and
// forget its record) or leave it to the user (and forget it too).
import type { Readable } from 'node:stream';
import type { ContainerConfig } from '@stevedore/docker-api';
import { asStevedoreError } from '@stevedore/errors';
import type { BuildRuntime, ContainerOutput } from './build-backends';

/** Where the names of a build's containers are kept while they exist (for the sweep). */
export interface ContainerRecords {
  /** Records a name before its container is created. */
  record(name: string): Promise<void>;
  /** Forgets a name once its container is removed, or left to the user. */
  forget(name: string): Promise<void>;
}

export const shortId = (id: string) => id.slice(0, 12);

/** The names of a build's containers begin with this: its ID's first 12 digits, and the attempt after the first. */
export function containerNamePrefix(buildId: string, attempt: number): string {
  return `build_${buildId.slice(0, 12)}_${attempt > 1 ? `r${attempt}_` : ''}`;
}

export class BuildContainers {
  /** Containers not removed yet: [ID, recorded name]. */
  private readonly made: Array<[string, string]> = [];
  private seq = 0;

  constructor(
    /** From containerNamePrefix(). */
    private readonly namePrefix: string,
    private readonly runtime: BuildRuntime,
    private readonly records: ContainerRecords,
    /** Writes a line to the build's output. */
    private readonly say: (text: string) => Promise<void>,
  ) {}

  /** Creates a container, its name recorded first; the runtime's warnings go to the output. */
  async create(config: ContainerConfig): Promise<string> {
    const name = `${this.namePrefix}${++this.seq}`;
    await this.records.record(name);
    const r = await this.runtime.create(name, config);
    this.made.push([r.id, name]);
    for (const w of r.warnings) await this.say(` ---> [Warning] ${w}\n`);
    return r.id;
  }

  /**
   * Runs a created container to its end, its output handed to `onOutput`;
   * resolves with its exit status. Cancelling the build kills it, even when
   * the cancellation came while it was starting.
   */
  async run(id: string, signal: AbortSignal, onOutput: (output: ContainerOutput) => Promise<void>): Promise<number> {
    const attachment = this.runtime.attach(id, onOutput);
    const onAbort = () => void this.runtime.kill(id).catch(() => undefined);
    signal.addEventListener('abort', onAbort);
    try {
      await this.runtime.start(id);
      if (signal.aborted) onAbort();
      const status = await this.runtime.wait(id);
      await attachment.ended;
      return status;
    } finally {
      signal.removeEventListener('abort', onAbort);
      // A start that failed leaves the attachment open: it goes with the step.
      attachment.cancel();
    }
  }

  /** Extracts a tar stream into a created container below `target`. */
  put(id: string, target: string, archive: Readable): Promise<void> {
    return this.runtime.putArchive(id, target, archive);
  }

  /** The containers the rules leave (no rm, or a failed step without forcerm) are the user's now: no sweep takes them. */
  async keepAll(): Promise<void> {
    for (const [, name] of this.made.splice(0)) await this.records.forget(name);
  }

  /** Removes every container not removed yet (a line each), and forgets its record. */
  async removeAll(): Promise<void> {
    while (this.made.length) {
      const [id, name] = this.made.shift()!;
      try {
        await this.runtime.remove(id);
        await this.records.forget(name);
        await this.say(`Removing intermediate container ${shortId(id)}\n`);
      } catch (err) {
        await this.say(`Error removing intermediate container ${shortId(id)}: ${asStevedoreError(err).message}\n`);
      }
    }
  }
}
