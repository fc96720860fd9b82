// Output waiting on disk for an attach client that fell behind: records of
// (stream, bytes) appended at one end and taken at the other, in a file
// unlinked as soon as it is open (nothing is left when the edge stops).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export class Spool {
  private readonly fd: number;
  private writeAt = 0;
  private readAt = 0;

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `attach-${randomBytes(8).toString('hex')}`);
    this.fd = fs.openSync(file, 'wx+', 0o600);
    fs.unlinkSync(file);
  }

  /** Bytes waiting. */
  get pending(): number {
    return this.writeAt - this.readAt;
  }

  append(stream: number, data: Uint8Array): void {
    const head = Buffer.alloc(5);
    head[0] = stream;
    head.writeUInt32BE(data.byteLength, 1);
    this.writeAt += fs.writeSync(this.fd, head, 0, 5, this.writeAt);
    let done = 0;
    while (done < data.byteLength) done += fs.writeSync(this.fd, data, done, data.byteLength - done, this.writeAt + done);
    this.writeAt += done;
  }

  /** Takes records, about `max` bytes of them (at least one when any waits). */
  take(max: number): Array<[number, Buffer]> {
    const out: Array<[number, Buffer]> = [];
    let size = 0;
    while (this.readAt < this.writeAt && size < max) {
      const head = Buffer.alloc(5);
      fs.readSync(this.fd, head, 0, 5, this.readAt);
      const data = Buffer.allocUnsafe(head.readUInt32BE(1));
      let got = 0;
      while (got < data.length) got += fs.readSync(this.fd, data, got, data.length - got, this.readAt + 5 + got);
      this.readAt += 5 + data.length;
      size += data.length;
      out.push([head[0], data]);
    }
    if (this.readAt === this.writeAt) {
      // Emptied: the file starts over (its blocks are given back).
      fs.ftruncateSync(this.fd, 0);
      this.readAt = this.writeAt = 0;
    }
    return out;
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // closed already
    }
  }
}
