// What an attach client is sent, at its own pace, without holding anyone up.
import type { Duplex } from 'node:stream';

/** How long an ended attach (cut off, or its output over) waits for a client that takes nothing of what is queued. */
const STALLED_CLOSE_MS = 60_000;
const STALL_CHECK_MS = 5000;

/**
 * The edge's side of an attach's output: written to the client as it comes,
 * never paused for it (the container, its log and the other clients go on).
 * A client whose untaken output passes `limit` bytes is cut off: nothing
 * more is queued for it, a notice follows what was, and its connection ends
 * (a client that resumes reading gets all of it). Once the connection is
 * ended, a client that takes nothing of what is queued for a minute is
 * closed, whether it was cut off or its output was over.
 */
export class AttachOutput {
  private cut = false;

  constructor(
    private readonly socket: Duplex,
    private readonly limit: number,
    private readonly write: (data: Buffer) => void,
    private readonly notice: (text: Buffer) => void,
    private readonly end: () => void,
    private readonly onCut: (queued: number) => void,
  ) {}

  /** False once the client has been cut off. */
  send(data: Buffer): boolean {
    if (this.cut || this.socket.destroyed) return false;
    this.write(data);
    if (this.socket.writableLength <= this.limit) return true;
    this.cut = true;
    this.onCut(this.socket.writableLength);
    this.notice(Buffer.from(`\nstevedore: this client fell more than ${this.limit} bytes behind the container's output and was cut off; the container goes on (docker logs has its output)\n`));
    this.finish();
    return false;
  }

  /** Ends the connection after what is queued; closes it when the client stops taking that. */
  finish(): void {
    if (this.socket.destroyed) return;
    this.end();
    let queued = this.socket.writableLength;
    let stalledFor = 0;
    const timer = setInterval(() => {
      const now = this.socket.writableLength;
      stalledFor = now > 0 && now >= queued ? stalledFor + STALL_CHECK_MS : 0;
      queued = now;
      if (stalledFor >= STALLED_CLOSE_MS) this.socket.destroy();
    }, STALL_CHECK_MS);
    timer.unref();
    this.socket.once('close', () => clearInterval(timer));
  }
}
