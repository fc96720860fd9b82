// Reading json-file lines back without JSON.parse: the monitor writes every
// line as `{"log":"…","stream":"stdout","time":"<30 characters>"}`, escaping
// only `"`, `\` and control bytes, so a line is decoded straight from the
// file's bytes into the output, with no string and no object made for it
// (hundreds of thousands of lines a second). A line in any other shape (an
// older writer, another tool's) goes through JSON.parse.

const PREFIX = Buffer.from('{"log":"');
/** What follows the log: `","stream":"stdout","time":"` and a time of 30 characters, `"}`. */
const STREAM = Buffer.from('","stream":"');
const TIME = Buffer.from('","time":"');
const TIME_LENGTH = 30;
const SUFFIX_LENGTH = STREAM.length + 6 + TIME.length + TIME_LENGTH + 2;
const BACKSLASH = 0x5c;

/** One decoded line: filled in by decodeLogLine (one object reused for every line). */
export interface LogLine {
  /** 1 stdout, 2 stderr. */
  stream: 1 | 2;
  /** The decoded output's length in `out`. */
  length: number;
  /** The entry's time. */
  time(): string;
}

const ESCAPED = new Int16Array(128).fill(-1);
for (const [c, v] of [[0x6e, 0x0a], [0x72, 0x0d], [0x74, 0x09], [0x22, 0x22], [0x5c, 0x5c], [0x2f, 0x2f], [0x62, 0x08], [0x66, 0x0c]]) ESCAPED[c] = v;

/** Copies `buf[from, to)` to `out` at `o`; returns the end. Short runs byte by byte (Buffer#copy makes a view each call). */
function copy(buf: Buffer, from: number, to: number, out: Buffer, o: number): number {
  if (to - from > 256) return o + buf.copy(out, o, from, to);
  for (let i = from; i < to; i++) out[o++] = buf[i];
  return o;
}

function matches(buf: Buffer, at: number, what: Buffer): boolean {
  for (let i = 0; i < what.length; i++) if (buf[at + i] !== what[i]) return false;
  return true;
}

/** Reads lines into `out`; `line` is filled in for each and returned. */
export class LogLineReader {
  private buf: Buffer = Buffer.alloc(0);
  /** The buffer searched last for a backslash, and the one found (its length: none). */
  private searched?: Buffer;
  private slashAt = 0;
  private timeAt = 0;
  private parsedTime = '';
  readonly line: LogLine = { stream: 1, length: 0, time: () => (this.timeAt >= 0 ? this.buf.toString('latin1', this.timeAt, this.timeAt + TIME_LENGTH) : this.parsedTime) };

  /**
   * Decodes the line `buf[start, end)` (without its newline) into `out` at
   * `at`, which has room for `end - start` bytes (a decoded line is never
   * longer); undefined for a line that is not an entry.
   */
  decode(buf: Buffer, start: number, end: number, out: Buffer, at: number): LogLine | undefined {
    this.buf = buf;
    const logEnd = end - SUFFIX_LENGTH;
    if (logEnd < start + PREFIX.length || !matches(buf, start, PREFIX) || !matches(buf, logEnd, STREAM) || !matches(buf, logEnd + STREAM.length + 6, TIME)) return this.parsed(buf, start, end, out, at);
    const s = logEnd + STREAM.length;
    // `std` then `out` or `err`, and the line's end `"}`.
    if (buf[s] !== 0x73 || buf[s + 1] !== 0x74 || buf[s + 2] !== 0x64 || buf[end - 2] !== 0x22 || buf[end - 1] !== 0x7d) return this.parsed(buf, start, end, out, at);
    const stdout = buf[s + 3] === 0x6f && buf[s + 4] === 0x75 && buf[s + 5] === 0x74;
    if (!stdout && !(buf[s + 3] === 0x65 && buf[s + 4] === 0x72 && buf[s + 5] === 0x72)) return this.parsed(buf, start, end, out, at);
    let p = start + PREFIX.length;
    let o = at;
    for (;;) {
      const slash = this.nextBackslash(buf, p);
      if (slash < 0 || slash >= logEnd) {
        o = copy(buf, p, logEnd, out, o);
        break;
      }
      o = copy(buf, p, slash, out, o);
      const code = buf[slash + 1];
      if (code === 0x75 /* u */) {
        const unit = parseInt(buf.toString('latin1', slash + 2, slash + 6), 16);
        // Code points past a byte come from other writers (the monitor escapes control bytes only).
        if (!(unit >= 0 && unit < 0x80) || slash + 6 > logEnd) return this.parsed(buf, start, end, out, at);
        out[o++] = unit;
        p = slash + 6;
      } else if (code < 0x80 && ESCAPED[code] >= 0 && slash + 2 <= logEnd) {
        out[o++] = ESCAPED[code];
        p = slash + 2;
      } else {
        return this.parsed(buf, start, end, out, at);
      }
    }
    if (buf.indexOf(0x22, start + PREFIX.length) < logEnd && this.hasBareQuote(buf, start + PREFIX.length, logEnd)) return this.parsed(buf, start, end, out, at);
    this.line.stream = stdout ? 1 : 2;
    this.line.length = o - at;
    this.timeAt = logEnd + STREAM.length + 6 + TIME.length;
    return this.line;
  }

  /**
   * The first backslash at or after `from`. A search that went past the line
   * is remembered, so that lines without escapes cost no search through the
   * lines after them (every byte is searched once).
   */
  private nextBackslash(buf: Buffer, from: number): number {
    if (this.searched !== buf || this.slashAt < from) {
      this.searched = buf;
      this.slashAt = buf.indexOf(BACKSLASH, from);
      if (this.slashAt < 0) this.slashAt = buf.length;
    }
    return this.slashAt >= buf.length ? -1 : this.slashAt;
  }

  /** Whether a quote in [from, to) is not escaped (the log's string would have ended there). */
  private hasBareQuote(buf: Buffer, from: number, to: number): boolean {
    for (let q = buf.indexOf(0x22, from); q >= 0 && q < to; q = buf.indexOf(0x22, q + 1)) {
      let slashes = 0;
      while (buf[q - 1 - slashes] === BACKSLASH) slashes++;
      if (slashes % 2 === 0) return true;
    }
    return false;
  }

  /** The slow way, for lines the monitor did not write: JSON.parse. */
  private parsed(buf: Buffer, start: number, end: number, out: Buffer, at: number): LogLine | undefined {
    let e: { log?: unknown; stream?: unknown; time?: unknown };
    try {
      e = JSON.parse(buf.toString('utf8', start, end)) as typeof e;
    } catch {
      return undefined;
    }
    if (typeof e.log !== 'string' || e === null) return undefined;
    this.line.stream = e.stream === 'stderr' ? 2 : 1;
    // (A decoded line is never longer than its JSON: `out` has room for it.)
    this.line.length = out.write(e.log, at, 'utf8');
    this.timeAt = -1;
    this.parsedTime = typeof e.time === 'string' ? e.time : '';
    return this.line;
  }
}
