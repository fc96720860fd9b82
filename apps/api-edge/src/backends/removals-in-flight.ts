// Today's CLI (run --rm) sends DELETE and then waits for the container's
// `destroy` event; when the event reaches it before the DELETE answer, it
// cancels its own DELETE and reports an error for a removal that worked.
// The container runtime publishes `destroy` as soon as the container is
// gone, so this edge holds a `destroy` event back until the removals in
// flight when it arrived have been answered.
import { Injectable } from '@nestjs/common';

/** A removal is not waited for longer than this (its answer may be stuck on a slow client). */
const HOLD_LIMIT_MS = 2000;

@Injectable()
export class RemovalsInFlight {
  private readonly pending = new Set<Promise<void>>();

  /** Runs a removal; its entry stays until `answered` settles. */
  track(answered: Promise<unknown>): void {
    const entry: Promise<void> = answered.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(entry);
    void entry.then(() => this.pending.delete(entry));
  }

  /** Resolves when every removal in flight now has been answered (at once when there is none). */
  answered(): Promise<void> | undefined {
    if (this.pending.size === 0) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, HOLD_LIMIT_MS)));
    return Promise.race([Promise.all([...this.pending]).then(() => undefined), limit]).finally(() => clearTimeout(timer));
  }
}
