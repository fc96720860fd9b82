// A container's output as its monitor logs it: json-file lines
// (`{"log","stream","time"}`) in `json.log`, rotated by the monitor to
// `json.log.1` and up. Read back for `docker logs` and for attach's `logs`.
import * as fs from 'node:fs';
import { OUTPUT_HEADER_ROOM, outputInPlace, type containers } from '@stevedore/contracts';
import type { ContainerPaths } from './container-paths';
import { DecodeState, Stop, parseLine } from './log-lines';
import type { ContainerDb } from './store/container-db';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Bytes read from a log file at a time, and the most sent in one message. */
const SLICE = 1024 * 1024;
/** A timestamp before a line: `[Jan _2 15:04:05.000] `, always this long. */
const STAMP_LENGTH = 22;

/** How often a followed log is looked at again while its container runs. */
const FOLLOW_POLL_MS = 100;

/** Docker 1.0's log timestamps: Go's StampMilli in UTC, `Jan _2 15:04:05.000`. */
export function stampMilli(iso: string): string {
  const d = new Date(iso);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}`;
}

export interface LogsWanted {
  stdout: boolean;
  stderr: boolean;
  timestamps: boolean;
  follow: boolean;
}

export class ContainerLogs {
  constructor(
    private readonly db: ContainerDb,
    private readonly paths: ContainerPaths,
    /** How many rotated files the monitor keeps. */
    private readonly maxFiles: number,
  ) {}

  /** The log's files, oldest first (the current one last). */
  files(id: string): string[] {
    const base = this.paths.logFile(id);
    const files: string[] = [];
    for (let i = this.maxFiles; i >= 1; i--) if (fs.existsSync(`${base}.${i}`)) files.push(`${base}.${i}`);
    if (fs.existsSync(base)) files.push(base);
    return files;
  }

  /**
   * Replays the log, read in slices (never whole), consecutive lines of one
   * stream batched into one message; with `follow`, keeps reading while the
   * container runs. `emit` may hold the replay back (the caller's pace).
   */
  async stream(id: string, wanted: LogsWanted, emit: (o: containers.Output) => Promise<void> | undefined, signal: AbortSignal): Promise<void> {
    // Decoded output is gathered in one buffer per message (a decoded line is never longer than its JSON).
    // Each batch starts after room for its message's header, written in place when it is sent.
    let batch = Buffer.allocUnsafe(OUTPUT_HEADER_ROOM + SLICE);
    let batchSize = OUTPUT_HEADER_ROOM;
    let batchStream = 0;
    /** Sends the batch; the caller waits for what it returns (the client's pace). */
    const flush = (): Promise<void> | undefined => {
      const stream = batchStream;
      // (An empty batch may have a stream, after empty lines: it has none once flushed, or a stream switch would never pass.)
      batchStream = 0;
      if (batchSize === OUTPUT_HEADER_ROOM) return undefined;
      const output = outputInPlace(batch, OUTPUT_HEADER_ROOM, batchSize, stream);
      batch = Buffer.allocUnsafe(OUTPUT_HEADER_ROOM + SLICE);
      batchSize = OUTPUT_HEADER_ROOM;
      return emit(output);
    };
    const stampLength = wanted.timestamps ? STAMP_LENGTH : 0;
    const state = new DecodeState();
    /** Room in a batch for `length` more bytes: what it holds is sent first when they would not fit. */
    const room = (length: number): Promise<void> | undefined => {
      const sent = batchSize + length > batch.length ? flush() : undefined;
      if (OUTPUT_HEADER_ROOM + length > batch.length) batch = Buffer.allocUnsafe(OUTPUT_HEADER_ROOM + length);
      return sent;
    };
    /** A line in another shape than the monitor's, read with JSON.parse, added to the batch. */
    const parsed = async (data: Buffer, start: number, end: number): Promise<void> => {
      const e = parseLine(data.toString('utf8', start, end));
      if (!e || (e.stream === 1 && !wanted.stdout) || (e.stream === 2 && !wanted.stderr)) return;
      if (batchStream && e.stream !== batchStream) await flush();
      const text = (stampLength ? `[${stampMilli(e.time)}] ` : '') + e.log;
      await room(Buffer.byteLength(text));
      batchSize += batch.write(text, batchSize);
      batchStream = e.stream;
    };
    /**
     * Takes the whole lines of `data` into batches, sent as they fill or
     * switch streams (waiting for the caller's pace); returns where the
     * unfinished line starts.
     */
    const takeLines = async (data: Buffer): Promise<number> => {
      let position = 0;
      for (;;) {
        state.stream = batchStream;
        state.decode(data, position, data.length, batch, batchSize, wanted);
        position = state.position;
        batchSize = state.outEnd;
        batchStream = state.stream;
        if (state.stop === Stop.ended) return position;
        if (state.stop === Stop.switched) {
          await flush();
          continue;
        }
        // The line the decode stopped at: too long for what is left of the batch, or in another shape.
        const nl = data.indexOf(0x0a, position);
        if (state.stop === Stop.full) await room(stampLength + nl - position);
        else {
          await parsed(data, position, nl);
          position = nl + 1;
        }
      }
    };
    /** Reads a file from `offset` to its current end in slices; returns the new offset and the unfinished line. */
    // One read buffer for the whole replay: the unfinished line of a slice is moved to its front, the next slice read after it.
    let reading = Buffer.allocUnsafe(2 * SLICE);
    const readFrom = async (file: string, offset: number, rest: Buffer): Promise<{ offset: number; rest: Buffer }> => {
      const fd = fs.openSync(file, 'r');
      try {
        for (;;) {
          if (rest.length + SLICE > reading.length) reading = Buffer.allocUnsafe(rest.length + SLICE);
          rest.copy(reading, 0);
          const n = fs.readSync(fd, reading, rest.length, SLICE, offset);
          if (n <= 0) break;
          offset += n;
          const data = reading.subarray(0, rest.length + n);
          // The unfinished line, kept apart (the buffer is read into again).
          rest = Buffer.from(data.subarray(await takeLines(data)));
          if (signal.aborted) break;
        }
      } finally {
        fs.closeSync(fd);
      }
      return { offset, rest };
    };
    const files = this.files(id);
    const current = files[files.length - 1];
    for (const file of files.slice(0, -1)) await readFrom(file, 0, Buffer.alloc(0));
    if (!current) return flush();
    let position: { offset: number; rest: Buffer } = { offset: 0, rest: Buffer.alloc(0) };
    let inode = fs.statSync(current).ino;
    for (;;) {
      const st = fs.existsSync(current) ? fs.statSync(current) : undefined;
      if (st && st.ino !== inode) {
        inode = st.ino; // rotated: the new file from its beginning
        position = { offset: 0, rest: Buffer.alloc(0) };
      }
      if (st && st.size > position.offset) position = await readFrom(current, position.offset, position.rest);
      await flush();
      if (!wanted.follow || signal.aborted) return;
      const row = this.db.get(id);
      if (!row || row.status !== 'running') {
        // One more read after the end, for the last lines.
        const final = fs.existsSync(current) ? fs.statSync(current).size : position.offset;
        if (final <= position.offset) return;
        continue;
      }
      await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
    }
  }
}
