// A container's output as its monitor logs it: json-file lines
// (`{"log","stream","time"}`) in `json.log`, rotated by the monitor to
// `json.log.1` and up. Read back for `docker logs` and for attach's `logs`.
import * as fs from 'node:fs';
import type { containers } from '@stevedore/contracts';
import type { ContainerPaths } from './container-paths';
import type { ContainerDb } from './store/container-db';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Bytes read from a log file at a time, and the most sent in one message. */
const SLICE = 1024 * 1024;

/** How often a followed log is looked at again while its container runs. */
const FOLLOW_POLL_MS = 100;

/** Docker 1.0's log timestamps: Go's StampMilli in UTC, `Jan _2 15:04:05.000`. */
export function stampMilli(iso: string): string {
  const d = new Date(iso);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}`;
}

interface LogEntry {
  log: string;
  stream: string;
  time: string;
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
    let batch: Buffer[] = [];
    let batchSize = 0;
    let batchStream = 0;
    const flush = async () => {
      if (!batchSize) return;
      const data = Buffer.concat(batch, batchSize);
      batch = [];
      batchSize = 0;
      await emit({ stream: batchStream, data });
    };
    const take = async (line: string) => {
      if (!line) return;
      let e: LogEntry;
      try {
        e = JSON.parse(line) as LogEntry;
      } catch {
        return;
      }
      const stream = e.stream === 'stderr' ? 2 : 1;
      if ((stream === 1 && !wanted.stdout) || (stream === 2 && !wanted.stderr)) return;
      if (stream !== batchStream || batchSize >= SLICE) await flush();
      batchStream = stream;
      const text = Buffer.from(wanted.timestamps ? `[${stampMilli(e.time)}] ${e.log}` : e.log);
      batch.push(text);
      batchSize += text.length;
    };
    /** Reads a file from `offset` to its current end in slices; returns the new offset and the unfinished line. */
    const readFrom = async (file: string, offset: number, rest: string): Promise<{ offset: number; rest: string }> => {
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.alloc(SLICE);
        for (;;) {
          const n = fs.readSync(fd, buf, 0, SLICE, offset);
          if (n <= 0) break;
          offset += n;
          const lines = (rest + buf.subarray(0, n).toString('utf8')).split('\n');
          rest = lines.pop() ?? '';
          for (const line of lines) await take(line);
          if (signal.aborted) break;
        }
      } finally {
        fs.closeSync(fd);
      }
      return { offset, rest };
    };
    const files = this.files(id);
    const current = files[files.length - 1];
    for (const file of files.slice(0, -1)) await readFrom(file, 0, '');
    if (!current) return flush();
    let position = { offset: 0, rest: '' };
    let inode = fs.statSync(current).ino;
    for (;;) {
      const st = fs.existsSync(current) ? fs.statSync(current) : undefined;
      if (st && st.ino !== inode) {
        inode = st.ino; // rotated: the new file from its beginning
        position = { offset: 0, rest: '' };
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
