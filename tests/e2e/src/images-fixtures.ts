// Test images made here: a busybox root filesystem from Debian's
// busybox-static, and archives built entry by entry for the bad-input tests.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { removedAtExit, shortTempDir } from './harness';

let busyboxTar: string | undefined;

/** A tarball of a busybox rootfs (one static binary and its applet links). */
export function busyboxRootfsTar(): string {
  if (busyboxTar && fs.existsSync(busyboxTar)) return busyboxTar;
  const dir = shortTempDir('bbroot-');
  for (const d of ['bin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(dir, d));
  fs.copyFileSync('/bin/busybox', path.join(dir, 'bin', 'busybox'));
  fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  busyboxTar = removedAtExit(`${dir}.tar`);
  execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', busyboxTar, '.']);
  fs.rmSync(dir, { recursive: true, force: true });
  return busyboxTar;
}

export interface TarEntry {
  name: string;
  type?: tar.Header['type'];
  body?: string;
  linkname?: string;
  mode?: number;
}

/** A tar archive built entry by entry (for archives no well-behaved tool makes). */
export function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644) } as tar.Header, e.body ?? '');
  }
  pack.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    (pack as unknown as NodeJS.ReadableStream).on('data', (c: Buffer) => chunks.push(c));
    (pack as unknown as NodeJS.ReadableStream).on('end', () => resolve(Buffer.concat(chunks)));
    (pack as unknown as NodeJS.ReadableStream).on('error', reject);
  });
}

/** Files below a directory, relative (to prove nothing was left behind). */
export function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) walk(path.join(d, e.name), r);
    }
  };
  walk(dir, '');
  return out;
}

/** A tar archive of named buffers, in memory (test archives are small). */
export async function tarBuffer(entries: Map<string, Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of entries) pack.entry({ name, size: body.length } as tar.Header, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}
