// Progress of import, pull and push as the image store reports it: each
// step names only what it knows; the message sent fills in the rest.
import type { Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { images } from '@stevedore/contracts';

export type ProgressSink = (p: Partial<images.Progress>) => Promise<void> | void;

/** The whole message of a step (what it leaves out is empty). */
export function progressMessage(p: Partial<images.Progress>): images.Progress {
  return { status: '', id: '', current: 0, total: 0, start: 0, error: '', perLayer: false, ...p };
}

/** How often a transfer reports: every 1% of its size, at most every 512 KiB (every 512 KiB when the size is unknown). */
const MAX_STEP = 512 * 1024;

/**
 * Bytes on their way (a download, an upload): passed on unchanged, counted,
 * hashed when asked, and reported as a per-layer progress line.
 */
export class TransferProgress extends Transform {
  /** Bytes passed so far. */
  bytes = 0;
  private reported = 0;
  private readonly step: number;
  private readonly start = Math.floor(Date.now() / 1000);

  constructor(
    private readonly progress: ProgressSink,
    private readonly line: { status: string; id?: string; total?: number },
    private readonly options: { hash?: Hash; reportEnd?: boolean } = {},
  ) {
    super();
    const total = line.total ?? 0;
    this.step = total > 0 ? Math.min(MAX_STEP, Math.max(1, Math.floor(total / 100))) : MAX_STEP;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, cb: TransformCallback): void {
    this.options.hash?.update(chunk);
    this.bytes += chunk.length;
    if (this.bytes - this.reported >= this.step) {
      this.reported = this.bytes;
      this.report(this.line.total ?? 0);
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.options.reportEnd) this.report(this.line.total || this.bytes);
    cb();
  }

  private report(total: number): void {
    const { status, id } = this.line;
    void this.progress({ status, ...(id ? { id } : {}), current: this.bytes, total, start: this.start, perLayer: true });
  }
}
