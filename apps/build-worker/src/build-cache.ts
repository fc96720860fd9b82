// The build cache (BUILDER.md §6): a step is skipped when an image made from
// the same config on top of the current one is here. The image store's
// answers (FROM's and each look-up's) carry the chain of most recent
// children below the image: a step whose config matches the next link is a
// hit without another call. After a commit nothing is asked: an image this
// build just made has no children.
import { containerConfigText, type images } from '@stevedore/contracts';
import { sameBuildConfig, type ContainerConfig } from '@stevedore/docker-api';
import type { BuildImageStore } from './build-backends';

export class BuildCache {
  /** Below the current image: its most recent child, that one's, … */
  private chain: images.CachedLink[] = [];
  /** The current image was committed by this build. */
  private madeHere = false;

  constructor(
    private readonly store: Pick<BuildImageStore, 'findCached'>,
    /** The build's `nocache`: every step runs. */
    private readonly disabled: boolean,
  ) {}

  /** The build starts again from an image that was here before it (FROM), with the chain below it. */
  based(chain: images.CachedLink[]): void {
    this.chain = chain;
    this.madeHere = false;
  }

  /** The build committed a new image. */
  committed(): void {
    this.chain = [];
    this.madeHere = true;
  }

  /** The image made before from `containerConfig` on top of `parent`, or '' for a miss. */
  async find(parent: string, containerConfig: ContainerConfig): Promise<string> {
    if (this.disabled || this.madeHere) return '';
    const next = this.chain.shift();
    if (next && sameBuildConfig(containerConfigText.decode(next.containerConfigJson) ?? {}, containerConfig)) return next.id;
    const found = await this.store.findCached(parent, containerConfig);
    this.chain = found.chain;
    return found.id;
  }
}
