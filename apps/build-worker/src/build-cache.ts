// The build cache (BUILDER.md §6), cluster-wide since the image store is: a
// step is skipped when an image made from the same config on top of the
// current one is there. The image store's answers (FROM's and each
// look-up's) carry the chain of most recent children below the image: a
// step whose config matches the next link is a hit without another call.
// After a commit nothing is asked: an image this build just made has no
// children. On a miss the build takes the step's lease (step-leases.ts), so
// that a step another build is building at that moment is built once: the
// build waits, then finds the other's result.
import { containerConfigText, type images } from '@stevedore/contracts';
import { sameBuildConfig, type ContainerConfig } from '@stevedore/docker-api';
import type { BuildImageStore } from './build-backends';
import { stepHash, type StepLeasing } from './step-leases';

/** What the cache counts (the worker's metrics). */
export interface CacheCounts {
  hit(): void;
  miss(): void;
  waited(): void;
}

export class BuildCache {
  /** Below the current image: its most recent child, that one's, … */
  private chain: images.CachedLink[] = [];
  /** The current image was committed by this build. */
  private madeHere = false;

  constructor(
    private readonly store: Pick<BuildImageStore, 'findCached'>,
    /** The build's `nocache`: every step runs. */
    private readonly disabled: boolean,
    /** Shared steps: without, two builds may build the same step at once. */
    private readonly shared?: { leases: StepLeasing; signal: AbortSignal; say: (text: string) => Promise<void>; counts: CacheCounts },
  ) {}

  /** The build starts again from an image that was here before it (FROM), with the chain below it. */
  based(chain: images.CachedLink[]): void {
    this.chain = chain;
    this.madeHere = false;
  }

  /** The build committed a new image: the step's lease, if held, goes. */
  async committed(): Promise<void> {
    this.chain = [];
    this.madeHere = true;
    await this.shared?.leases.release();
  }

  /** The step ended (committed, failed or cancelled): its lease, if still held, goes. */
  async stepEnded(): Promise<void> {
    await this.shared?.leases.release();
  }

  /** The image made before from `containerConfig` on top of `parent`, or '' for a miss (the step is then this build's to make). */
  async find(parent: string, containerConfig: ContainerConfig): Promise<string> {
    if (this.disabled) return '';
    if (!this.shared) return this.madeHere ? '' : this.look(parent, containerConfig);
    // Shared: even on top of an image this build made, another build that found that image in the cache may be ahead.
    const { leases, signal, say, counts } = this.shared;
    const found = await this.look(parent, containerConfig);
    if (found) return this.counted(found);
    await leases.take(stepHash(parent, containerConfigText.encode(containerConfig)), signal, async () => {
      counts.waited();
      await say(' ---> Waiting for another build that is building this same step\n');
    });
    // Held now. The holder before, if any, made it (unless its step failed); or one made it between the look and the take.
    const after = await this.look(parent, containerConfig);
    if (after) await leases.release();
    return this.counted(after);
  }

  private async look(parent: string, containerConfig: ContainerConfig): Promise<string> {
    const next = this.chain.shift();
    if (next && sameBuildConfig(containerConfigText.decode(next.containerConfigJson) ?? {}, containerConfig)) return next.id;
    const found = await this.store.findCached(parent, containerConfig);
    this.chain = found.chain;
    return found.id;
  }

  private counted(id: string): string {
    if (id) this.shared?.counts.hit();
    else this.shared?.counts.miss();
    return id;
  }
}
