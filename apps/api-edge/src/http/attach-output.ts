// What an attach client is sent, at its own pace, without holding anyone up.
import type { Duplex } from 'node:stream';

/** How long a cut-off attach client has to take what was already queued for it, and the notice. */
const CUT_OFF_LINGER_MS = 60_000;

/**
 * The edge's side of an attach's output: written to the client as it comes,
 * never paused for it (the container, its log and the other clients go on).
 * A client whose untaken output passes `limit` bytes is cut off: nothing
 * more is queued for it, a notice follows what was, and its connection ends
 * (a client that resumes reading gets all of it); one that takes none of it
 * within a minute is closed.
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
    this.end();
    const timer = setTimeout(() => this.socket.destroy(), CUT_OFF_LINGER_MS);
    this.socket.once('close', () => clearTimeout(timer));
    return false;
  }
}
