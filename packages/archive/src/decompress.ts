// Archives arrive plain or compressed (gzip, bzip2, xz), as Docker 1.0
// accepted them; the format is told by the first bytes.
import { spawn } from 'node:child_process';
import { Duplex, PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { refused } from '@stevedore/errors';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz';

/** Docker 1.0's magic numbers (BUILDER.md §1): gzip's includes its one compression method, deflate. */
const MAGIC: ReadonlyArray<[Exclude<Compression, 'none'>, Buffer]> = [
  ['gzip', Buffer.from([0x1f, 0x8b, 0x08])],
  ['bzip2', Buffer.from('BZh', 'latin1')],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
];
const LONGEST_MAGIC = Math.max(...MAGIC.map(([, m]) => m.length));
const TAR_HEADER = 512;

/** The compression the first bytes announce; a head shorter than a format's magic is not that format. */
export function detectCompression(head: Buffer): Compression {
  for (const [compression, magic] of MAGIC) if (head.length >= magic.length && head.subarray(0, magic.length).equals(magic)) return compression;
  return 'none';
}

/**
 * Whether a file is an archive that ADD unpacks rather than copies, from its
 * first bytes (512 of them suffice): compressed, or a tar header, whose
 * "ustar" magic sits at offset 257.
 */
export function isArchive(head: Buffer): boolean {
  if (detectCompression(head) !== 'none') return true;
  return head.length >= TAR_HEADER && head.subarray(257, 262).toString('latin1') === 'ustar';
}

/** bzip2 and xz through the system's tools (as Docker 1.0 did for xz); a failure is the stream's error. */
function externalDecompressor(command: 'bzip2' | 'xz'): Duplex {
  const child = spawn(command, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(refused(`The archive could not be decompressed (${command}: ${stderr.trim() || `exit ${code}`})`));
  });
  child.stdin.on('error', () => undefined); // the exit code tells
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
  duplex.on('close', () => child.kill('SIGKILL'));
  return duplex;
}

/**
 * Waits for the first bytes (enough for every magic, unless the stream is
 * shorter) and gives them back: the stream to read is the input with them
 * put back, or a stream of them alone when the input has ended.
 */
function peek(input: Readable): Promise<{ head: Buffer; stream: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const take = (ended: boolean) => {
      cleanup();
      const head = Buffer.concat(chunks);
      if (ended) return resolve({ head, stream: Readable.from(head.length ? [head] : [], { objectMode: false }) });
      input.unshift(head);
      resolve({ head, stream: input });
    };
    const tryRead = () => {
      for (let chunk: Buffer | null = input.read(); chunk !== null; chunk = input.read()) {
        chunks.push(chunk);
        length += chunk.length;
        if (length >= LONGEST_MAGIC) return take(false);
      }
    };
    const onEnd = () => take(true);
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      input.off('readable', tryRead);
      input.off('end', onEnd);
      input.off('error', onError);
    };
    input.on('readable', tryRead);
    input.on('end', onEnd);
    input.on('error', onError);
  });
}

/** The archive decompressed, whatever its compression. */
export async function decompress(input: Readable): Promise<{ stream: Readable; compression: Compression }> {
  const { head, stream } = await peek(input);
  const compression = detectCompression(head);
  if (compression === 'none') return { stream, compression };
  const d = compression === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : externalDecompressor(compression);
  stream.on('error', (err) => d.destroy(err));
  return { stream: stream.pipe(d), compression };
}
