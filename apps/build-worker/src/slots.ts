// A worker's build slots, shared by the queues it takes builds from (the
// shared one and its node's): a build waits for a slot; the owner is told
// when the last one is taken (it stops taking from the shared queue) and
// when one is free again.
/** `onChange(true)` when all are taken, `onChange(false)` when one is free again. */
export class Slots {
  private busy = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly size: number,
    private readonly onChange: (full: boolean) => void,
  ) {}

  async take(): Promise<void> {
    if (this.busy < this.size) {
      if (++this.busy === this.size) this.onChange(true);
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  give(): void {
    const next = this.waiting.shift();
    if (next) return next();
    if (this.busy-- === this.size) this.onChange(false);
  }
}
