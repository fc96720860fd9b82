// Reading json-file lines back. The monitor writes every line as
// `{"log":"…","stream":"stdout","time":"<30 characters>"}`, escaping only
// `"`, `\` and control bytes: such lines are decoded by native code
// (native/log-decode.c) straight from the file's bytes into a message,
// many lines a call, with no string and no object made for a line. A line
// in any other shape (an older writer's, another tool's) is read here with
// JSON.parse.
import * as path from 'node:path';

interface LogDecoder {
  decode(src: Buffer, start: number, end: number, out: Buffer, outAt: number, flags: number, state: Int32Array): void;
}

/** The native module, built beside the monitor (native/Makefile). */
const native = { exports: {} as LogDecoder };
process.dlopen(native, path.resolve(__dirname, '..', 'native', 'build', 'log-decode.node'));

/** Why a decode stopped. */
export const Stop = { ended: 0, full: 1, switched: 2, other: 3 } as const;

/** What the lines are decoded for: which streams, and a timestamp before each line. */
export interface LinesWanted {
  stdout: boolean;
  stderr: boolean;
  timestamps: boolean;
}

/** Where a decode left off; its `stream` (0: none yet) is also where the next one starts from. */
export class DecodeState {
  private readonly s = new Int32Array(4);
  /** The stream (1 stdout, 2 stderr) of the output decoded so far, 0 when there is none. */
  get stream(): number {
    return this.s[0];
  }
  set stream(v: number) {
    this.s[0] = v;
  }
  /** Where the first line not taken starts. */
  get position(): number {
    return this.s[1];
  }
  /** Where the output ends. */
  get outEnd(): number {
    return this.s[2];
  }
  /** Why it stopped (Stop). */
  get stop(): number {
    return this.s[3];
  }

  /**
   * Takes the whole lines of `src[start, end)` of the wanted streams into
   * `out` from `outAt` while they are of one stream and fit, each after its
   * stamp when asked; stops at a line in another shape (Stop.other), which
   * the caller reads with `parseLine`.
   */
  decode(src: Buffer, start: number, end: number, out: Buffer, outAt: number, wanted: LinesWanted): void {
    native.exports.decode(src, start, end, out, outAt, (wanted.stdout ? 1 : 0) | (wanted.stderr ? 2 : 0) | (wanted.timestamps ? 4 : 0), this.s);
  }
}

/** A line in any other shape, read with JSON.parse; undefined when it is not an entry. */
export function parseLine(line: string): { log: string; stream: 1 | 2; time: string } | undefined {
  let e: { log?: unknown; stream?: unknown; time?: unknown };
  try {
    e = JSON.parse(line) as typeof e;
  } catch {
    return undefined;
  }
  if (e === null || typeof e.log !== 'string') return undefined;
  return { log: e.log, stream: e.stream === 'stderr' ? 2 : 1, time: typeof e.time === 'string' ? e.time : '' };
}
