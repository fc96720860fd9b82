// An attachment to a container through the container runtime that outlives a
// restart of the runtime. The container keeps running while its runtime is
// away (its monitor owns the process and its streams), so when the call fails
// because the runtime went away and the client is still connected, the
// attachment is opened again once the runtime is back, and the stdin the old
// runtime had not yet handed to the container's monitor is sent again. Without
// it the client saw its output end cleanly and waited for an exit that a
// container reading stdin would never make.
import { shortRunDir, type StevedoreConfig } from '@stevedore/config';
import { Frame, ShimConnection, type containers } from '@stevedore/contracts';
import type { Logger } from '@stevedore/logging';
import { backendError, isUnavailable, type CallSettings } from '@stevedore/service-kit';

const SERVICE = 'container-runtime';

/** Resumes in one attachment before its failure is reported to the client. */
const MAX_RESUMES = 5;
/** Unconfirmed stdin kept for a resume; past it, none is kept (a resume then cannot promise the stdin sent before it). */
const MAX_UNCONFIRMED_BYTES = 4 * 1024 * 1024;
/** How long a resumed call may wait for the runtime to answer its open. */
const RESUME_WITHIN_MS = 60_000;

/** An attach call, as far as an attachment uses it (grpc-js's duplex call is one). */
export interface AttachCall {
  write(message: containers.AttachRequest): boolean;
  cancel(): void;
  on(event: 'data', listener: (reply: containers.AttachReply) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

/** What an attachment uses of the runtime's client (the typed client is one). */
export interface AttachRuntime {
  attach(settings: CallSettings): AttachCall;
}

export interface AttachTarget {
  id: string;
  logs: boolean;
  stream: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** The container's StartedAt when the client asked. */
  startedAt: string;
  /** `id` names an exec, whose process starts once attached (not again on a resume). */
  exec?: boolean;
  /** This edge's data root, on a single-host stack: the runtime beside it hands it the monitor to read the output from. */
  directRoot?: string;
  /** Where that runtime's monitor sockets are (its run directory, the short socket directory): no other socket is read. */
  monitorDirs?: string[];
}

/**
 * What a target needs for its output to be read from the container's monitor
 * by this edge: only from this host's own runtime (a single-host stack), not
 * from a cluster node's.
 */
export function directOutput(config: Pick<StevedoreConfig, 'root' | 'runDir'>, routed: { node?: unknown }): Pick<AttachTarget, 'directRoot' | 'monitorDirs'> {
  return routed.node ? {} : { directRoot: config.root, monitorDirs: [config.runDir, shortRunDir(config.root)] };
}

/** The output's bytes as a Buffer, without a copy (the codec reads them as a view of the message). */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export class RuntimeAttachment {
  private call!: AttachCall;
  /** Stdin sent on the current call before the runtime said the monitor has it: lost if the runtime goes away. */
  private unconfirmed: Buffer[] = [];
  private unconfirmedBytes = 0;
  private connected = false;
  private stdinEnded = false;
  private cancelled = false;
  private gaveUp = false;
  private drainWaiter?: () => void;
  private startedAt: string;
  /** The monitor the output is read from directly (a runtime beside this edge handed it), and its closing. */
  private monitor?: { socket: string; connection: ShimConnection; closed: Promise<void> };
  private subscribing?: Promise<boolean>;

  constructor(
    private readonly rt: AttachRuntime,
    private readonly target: AttachTarget,
    private readonly requestId: string,
    private readonly log: Logger,
    private readonly onOutput: (stream: number, data: Buffer) => void,
  ) {
    this.startedAt = target.startedAt;
  }

  /**
   * Runs the attachment until the container's output ends or the client
   * cancels it; resolves with the failure that ended it otherwise (a runtime
   * that could not be reached again, or one that refused).
   */
  async run(): Promise<Error | undefined> {
    for (let resumes = 0; ; resumes++) {
      const failure = await this.attempt(resumes > 0);
      // Read directly, the output is over once the monitor has closed (after the runtime's call has ended).
      await this.subscribing;
      if (!failure && this.monitor && !this.cancelled) await this.monitor.closed;
      if (!failure || this.cancelled) return undefined;
      const err = backendError(failure, SERVICE);
      // Removed while the runtime was away (docker run --rm removes once it has seen the exit): its output is over.
      if (resumes > 0 && err.kind === 'notFound') return undefined;
      if (!isUnavailable(err) || this.gaveUp || resumes >= MAX_RESUMES) return err;
      this.log.warn({ id: this.target.id, err: err.message }, 'the container runtime went away during an attach: attaching again');
    }
  }

  /** Sends stdin; false when the runtime is not taking more: wait for `whenDrained`. */
  sendStdin(chunk: Buffer): boolean {
    if (!this.connected && this.unconfirmedBytes + chunk.length <= MAX_UNCONFIRMED_BYTES) {
      this.unconfirmed.push(chunk);
      this.unconfirmedBytes += chunk.length;
    } else if (!this.connected) {
      // Bounded memory: the edge holds no more for a container that does not start (the runtime holds the client back meanwhile).
      this.unconfirmed = [];
      this.unconfirmedBytes = MAX_UNCONFIRMED_BYTES + 1;
    }
    return this.call.write({ part: { $case: 'stdin', stdin: chunk } });
  }

  whenDrained(resume: () => void): void {
    this.drainWaiter = resume;
    this.call.once('drain', () => this.drained());
  }

  /** The client ended its input (a half-close). */
  closeStdin(): void {
    this.stdinEnded = true;
    this.call.write({ part: { $case: 'stdinClosed', stdinClosed: true } });
  }

  cancel(): void {
    this.cancelled = true;
    this.call.cancel();
    this.monitor?.connection.close();
  }

  /**
   * Subscribes to the output at a monitor's socket (kept across a resume);
   * false when it cannot be read. One subscription at a time: a second ask
   * (a resume during the first) shares it.
   */
  private readMonitor(socket: string): Promise<boolean> {
    const t = this.target;
    // Only a monitor of this edge's own stack, under its data root's run directory or the short socket directory.
    if (!t.directRoot || !t.monitorDirs?.some((dir) => socket.startsWith(`${dir}/`)) || socket.includes('/../')) return Promise.resolve(false);
    const current = this.monitor && !this.monitor.connection.socket.destroyed ? this.monitor : undefined;
    if (current?.socket === socket) return Promise.resolve(true);
    current?.connection.close();
    this.subscribing ??= this.subscribe(socket).finally(() => (this.subscribing = undefined));
    return this.subscribing.then((subscribed) => subscribed && this.monitor?.socket === socket);
  }

  private async subscribe(socket: string): Promise<boolean> {
    if (this.cancelled) return false;
    let connection: ShimConnection | undefined;
    try {
      connection = await ShimConnection.connect(socket);
      const c = connection;
      let exited = false;
      const closed = new Promise<void>((resolve) => c.once('close', () => {
        resolve();
        // Closed before the exit: the monitor dropped this reader (it took nothing for a second) or went away. The attachment ends, as a dropped relay's did.
        if (exited || this.cancelled) return;
        this.log.warn({ id: this.target.id }, 'the container\'s monitor closed the attachment\'s output before the exit: ending it');
        this.cancel();
      }));
      c.on('frame', (type: number, payload: Buffer) => {
        if ((type === Frame.stdout && this.target.stdout) || (type === Frame.stderr && this.target.stderr)) this.onOutput(type, payload);
        else if (type === Frame.exit) exited = true;
      });
      await c.subscribe();
      this.monitor = { socket, connection: c, closed };
      if (this.cancelled) c.close();
      return true;
    } catch (err) {
      connection?.close();
      this.log.warn({ id: this.target.id, err: err instanceof Error ? err.message : String(err) }, 'the monitor\'s output could not be read directly: relayed by the runtime');
      return false;
    }
  }

  private drained(): void {
    const resume = this.drainWaiter;
    this.drainWaiter = undefined;
    resume?.();
  }

  /** One call: resolves when it ends, with its failure if it failed. */
  private attempt(resume: boolean): Promise<Error | undefined> {
    const call = this.rt.attach({ requestId: this.requestId });
    this.call = call;
    this.connected = false;
    const t = this.target;
    // The output the client already has is not asked for again.
    call.write({ part: { $case: 'open', open: { id: t.id, logs: t.logs && !resume, stream: t.stream, stdin: t.stdin, stdout: t.stdout, stderr: t.stderr, resume, resumeAfter: this.startedAt, exec: Boolean(t.exec), directRoot: t.directRoot ?? '' } } });
    let open = true;
    for (const chunk of this.unconfirmed) open = call.write({ part: { $case: 'stdin', stdin: chunk } });
    if (this.stdinEnded) call.write({ part: { $case: 'stdinClosed', stdinClosed: true } });
    if (this.drainWaiter) {
      if (open) this.drained();
      else call.once('drain', () => this.drained());
    }
    if (this.cancelled) call.cancel();
    // A runtime that does not come back is given up on.
    const giveUp = resume ? setTimeout(() => {
      this.gaveUp = true;
      call.cancel();
    }, RESUME_WITHIN_MS) : undefined;
    return new Promise((resolve) => {
      call.on('data', (r: containers.AttachReply) => {
        const part = r.part;
        if (!part) return;
        clearTimeout(giveUp);
        if (part.$case === 'output') this.onOutput(part.output.stream, asBuffer(part.output.data));
        else if (part.$case === 'startedAt') this.startedAt = part.startedAt;
        else if (part.$case === 'monitor') void this.readMonitor(part.monitor).then((subscribed) => call.write({ part: { $case: 'monitorSubscribed', monitorSubscribed: subscribed } }));
        else if (part.$case === 'connected') {
          this.connected = true;
          this.unconfirmed = [];
          this.unconfirmedBytes = 0;
        }
      });
      call.on('end', () => {
        clearTimeout(giveUp);
        resolve(undefined);
      });
      call.on('error', (err) => {
        clearTimeout(giveUp);
        resolve(err);
      });
    });
  }
}
