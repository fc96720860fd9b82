// What an attach client is sent, at its own pace, without holding anyone up.
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import { Spool } from './spool';

/** How long an ended attach (cut off, or its output over) waits for a client that takes nothing of what is queued. */
const STALLED_CLOSE_MS = 60_000;
const STALL_CHECK_MS = 5000;
/** Output taken from the spool at a time. */
const SPOOL_READ = 1024 * 1024;

/** The bounds of a client's untaken output, from the settings (spools in the run directory). */
export function attachBacklog(config: { attachBacklogBytes: number; attachSpoolBytes: number; runDir: string }): Pick<AttachOutputOptions, 'limit' | 'spool'> {
  return { limit: config.attachBacklogBytes, spool: { dir: path.join(config.runDir, 'attach-spools'), limit: config.attachSpoolBytes } };
}

export interface AttachOutputOptions {
  /** Output the client may leave untaken in memory; past it, the rest waits in a spool. */
  limit: number;
  /** Where spools are made, and the most one may hold before its client is cut off. */
  spool: { dir: string; limit: number };
  write(stream: number, data: Buffer): void;
  notice(text: Buffer): void;
  end(): void;
  onCut(queued: number): void;
}

/**
 * The edge's side of an attach's output: written to the client as it comes,
 * never paused for it (the container, its log and the other clients go on).
 * A client whose untaken output passes `limit` bytes is fed from then on
 * from a spool file, as fast as it reads, until it has caught up: a slow
 * reader slows only itself. One whose spool would pass its own limit is cut
 * off: nothing more is kept for it, a notice follows what was, and its
 * connection ends. Once the connection is ended, a client that takes
 * nothing of what is queued for a minute is closed.
 */
export class AttachOutput {
  private cut = false;
  private spool?: Spool;
  /** What the pump does once the spool is empty: end the connection, after the notice of a cut-off. */
  private endWhenDrained = false;
  private noticeWhenDrained?: Buffer;
  private stallTimer?: NodeJS.Timeout;

  constructor(
    private readonly socket: Duplex,
    private readonly o: AttachOutputOptions,
  ) {
    socket.once('close', () => this.dropSpool());
  }

  /** False once the client has been cut off. */
  send(stream: number, data: Buffer): boolean {
    if (this.cut || this.socket.destroyed) return false;
    if (this.spool) {
      if (this.spool.pending + data.length > this.o.spool.limit) return this.cutOff();
      this.spool.append(stream, data);
      return true;
    }
    this.o.write(stream, data);
    if (this.socket.writableLength <= this.o.limit) return true;
    // Behind: what comes next waits on disk until the client has taken what is queued.
    this.spool = new Spool(this.o.spool.dir);
    this.socket.on('drain', this.pump);
    return true;
  }

  /** Ends the connection after what is queued (the spool included); closes it when the client stops taking that. */
  finish(): void {
    if (this.socket.destroyed) return;
    this.watchStall();
    if (this.spool) this.endWhenDrained = true;
    else this.o.end();
  }

  /** Once the output is over: a client that takes nothing of what waits for it for a minute is closed. */
  private watchStall(): void {
    if (this.stallTimer) return;
    const waiting = () => this.socket.writableLength + (this.spool?.pending ?? 0);
    let queued = waiting();
    let stalledFor = 0;
    const timer = setInterval(() => {
      const now = waiting();
      stalledFor = now > 0 && now >= queued ? stalledFor + STALL_CHECK_MS : 0;
      queued = now;
      if (stalledFor >= STALLED_CLOSE_MS) this.socket.destroy();
    }, STALL_CHECK_MS);
    timer.unref();
    this.stallTimer = timer;
    this.socket.once('close', () => clearInterval(timer));
  }

  private cutOff(): false {
    this.cut = true;
    this.o.onCut(this.socket.writableLength + (this.spool?.pending ?? 0));
    const notice = Buffer.from(`\nstevedore: this client fell more than ${this.o.limit + this.o.spool.limit} bytes behind the container's output and was cut off; the container goes on (docker logs has its output)\n`);
    if (this.spool) this.noticeWhenDrained = notice;
    else this.o.notice(notice);
    this.finish();
    return false;
  }

  /** Feeds the client from the spool while it takes what it is sent; back to direct writes once it has caught up. */
  private readonly pump = (): void => {
    while (this.spool && !this.socket.destroyed && this.socket.writableLength <= this.o.limit) {
      const records = this.spool.take(SPOOL_READ);
      if (records.length === 0) {
        this.dropSpool();
        if (this.noticeWhenDrained) this.o.notice(this.noticeWhenDrained);
        if (this.endWhenDrained) this.finish();
        return;
      }
      for (const [stream, data] of records) this.o.write(stream, data);
    }
  };

  private dropSpool(): void {
    this.socket.off('drain', this.pump);
    this.spool?.close();
    this.spool = undefined;
  }
}
