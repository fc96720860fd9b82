// Extended attributes in tar archives, byte for byte. Docker's archives
// carry them as PAX records `SCHILY.xattr.<name>=<raw bytes>`, and a file
// capability (`security.capability`) is binary. tar-stream reads and writes
// every PAX value as UTF-8 text, which turns those bytes into U+FFFD; its
// PAX codec is replaced here by one that keeps `SCHILY.xattr.*` values as
// latin1 strings (one character a byte) and everything else as UTF-8.
import * as path from 'node:path';

export const XATTR_PAX_PREFIX = 'SCHILY.xattr.';

type Pax = Record<string, string>;

interface PaxCodec {
  decodePax(buf: Uint8Array): Pax;
  encodePax(opts: { name?: string; linkname?: string; pax?: Pax }): Buffer;
}

const isXattr = (key: string) => key.startsWith(XATTR_PAX_PREFIX);

function decodePax(input: Uint8Array): Pax {
  let buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const out: Pax = {};
  while (buf.length) {
    const space = buf.indexOf(0x20);
    const len = space > 0 ? Number.parseInt(buf.subarray(0, space).toString('latin1'), 10) : NaN;
    if (!(len > space + 1) || len > buf.length) return out;
    const record = buf.subarray(space + 1, len - 1); // without the length and the newline
    const eq = record.indexOf(0x3d);
    if (eq < 0) return out;
    const key = record.subarray(0, eq).toString('utf8');
    out[key] = record.subarray(eq + 1).toString(isXattr(key) ? 'latin1' : 'utf8');
    buf = buf.subarray(len);
  }
  return out;
}

/** `<length> key=value\n`, the length counting itself, in bytes. */
function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let digits = String(body.length).length;
  if (String(body.length + digits).length > digits) digits++;
  return Buffer.concat([Buffer.from(String(body.length + digits)), body]);
}

function encodePax(opts: { name?: string; linkname?: string; pax?: Pax }): Buffer {
  const parts: Buffer[] = [];
  if (opts.name) parts.push(record('path', Buffer.from(opts.name, 'utf8')));
  if (opts.linkname) parts.push(record('linkpath', Buffer.from(opts.linkname, 'utf8')));
  for (const [key, value] of Object.entries(opts.pax ?? {})) parts.push(record(key, Buffer.from(value, isXattr(key) ? 'latin1' : 'utf8')));
  return Buffer.concat(parts);
}

// The codec module that tar-stream's extract and pack call through (its
// package exports hide the file, so it is reached by its path).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const codec: PaxCodec = require(path.join(path.dirname(require.resolve('tar-stream')), 'headers.js'));
codec.decodePax = decodePax;
codec.encodePax = encodePax;
