// Archives arrive plain or compressed (gzip, bzip2, xz), as Docker 1.0
// accepted them; the format is told by the first bytes.
import { spawn } from 'node:child_process';
import { Duplex, PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { refused } from '@stevedore/errors';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz';

export function detectCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head[0] === 0xfd && head.subarray(1, 6).toString('latin1') === '7zXZ\0') return 'xz';
  return 'none';
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

/** Waits for the first bytes without consuming them. */
function peek(input: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tryRead = () => {
      const chunk: Buffer | null = input.read();
      if (chunk === null) return;
      cleanup();
      input.unshift(chunk);
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
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
  const compression = detectCompression(await peek(input));
  if (compression === 'none') return { stream: input, compression };
  const d = compression === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : externalDecompressor(compression);
  input.on('error', (err) => d.destroy(err));
  return { stream: input.pipe(d), compression };
}
