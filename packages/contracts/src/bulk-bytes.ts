// Bulk bytes (imports, loads, saves, exports, archives) cross gRPC in
// messages whose only content is one `bytes` field. The generated codecs
// copy such a payload several times (into a growing buffer, out of it, into
// a Buffer) and then the copy is garbage; at hundreds of megabytes that was
// most of the API edge's CPU. These codecs write the field's tag and length
// and copy the bytes once, and read the payload as a view of the received
// message. Any other message of the same type goes through the generated codec.
import * as containers from './generated/stevedore/container_runtime.generated';
import * as images from './generated/stevedore/image_store.generated';
import { FIELD_NUMBERS } from './generated/field-numbers.generated';

interface Codec {
  serialize(value: unknown): Buffer;
  deserialize(bytes: Buffer): unknown;
}

interface BulkField<M> {
  /** The field number of the bytes field. */
  field: number;
  /** The payload when the message carries only it. */
  bytesOf(message: M): Buffer | undefined;
  /** The message carrying `bytes`. */
  wrap(bytes: Buffer): M;
}

function pushVarint(out: number[], value: number): number[] {
  let n = value;
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** The length-delimited tag and length that lead a bytes field of `length` bytes. */
export function bytesFieldHeader(field: number, length: number): Buffer {
  return Buffer.from(pushVarint([(field << 3) | 2], length));
}

/** A varint at `at`: its value and the offset after it, or undefined past 5 bytes or the end. */
function readVarint(buf: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = at; i < buf.length && i < at + 5; i++) {
    value += (buf[i] & 0x7f) * scale;
    if ((buf[i] & 0x80) === 0) return { value, next: i + 1 };
    scale *= 128;
  }
  return undefined;
}

/** The payload of a message that is exactly one bytes field `field`, or undefined. */
export function bytesFieldPayload(field: number, message: Buffer): Buffer | undefined {
  if (message.length === 0 || message[0] !== ((field << 3) | 2)) return undefined;
  const length = readVarint(message, 1);
  return length && length.next + length.value === message.length ? message.subarray(length.next) : undefined;
}

/** Room before a gathered payload for a tag and a length of up to 5 bytes. */
const HEADER_ROOM = 6;
/** Gathered payloads, and their encoding (with the tag byte left for the serializer to set). */
const preEncoded = new WeakMap<Buffer, Buffer>();

/**
 * Gathers pieces into one payload laid out behind room for its field
 * header, so that sending it as a bulk message copies nothing more: the
 * gathering is the one copy of the bytes before gRPC frames them.
 */
export function gatherPayload(pieces: Buffer[], size: number): Buffer {
  const header = bytesFieldHeader(0, size);
  const buffer = Buffer.allocUnsafe(HEADER_ROOM + size);
  let at = HEADER_ROOM;
  for (const piece of pieces) at += piece.copy(buffer, at);
  const start = HEADER_ROOM - header.length;
  header.copy(buffer, start);
  const payload = buffer.subarray(HEADER_ROOM);
  preEncoded.set(payload, buffer.subarray(start));
  return payload;
}

function bulkCodec<M>(generated: Codec, bulk: BulkField<M>): Codec {
  return {
    serialize(value) {
      const bytes = bulk.bytesOf(value as M);
      if (!bytes) return generated.serialize(value);
      const wire = preEncoded.get(bytes);
      if (wire) {
        wire[0] = (bulk.field << 3) | 2;
        return wire;
      }
      const header = bytesFieldHeader(bulk.field, bytes.length);
      return Buffer.concat([header, bytes], header.length + bytes.length);
    },
    deserialize(message) {
      const payload = bytesFieldPayload(bulk.field, message);
      return payload ? bulk.wrap(payload) : generated.deserialize(message);
    },
  };
}

interface MethodDefinition {
  requestSerialize(value: unknown): Buffer;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: unknown): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

/** Puts the bulk codec on one side of a method's definition (clients and servers are made from the definitions). */
function useBulk<M>(method: MethodDefinition, side: 'request' | 'response', bulk: BulkField<M>): void {
  const serialize = side === 'request' ? 'requestSerialize' : 'responseSerialize';
  const deserialize = side === 'request' ? 'requestDeserialize' : 'responseDeserialize';
  const codec = bulkCodec({ serialize: method[serialize], deserialize: method[deserialize] }, bulk);
  method[serialize] = codec.serialize;
  method[deserialize] = codec.deserialize;
}

const chunkPart = <M extends { part?: { $case: string } }>(field: number): BulkField<M> => ({
  field,
  bytesOf: (m) => (m.part?.$case === 'chunk' ? (m.part as unknown as { chunk: Buffer }).chunk : undefined),
  wrap: (chunk) => ({ part: { $case: 'chunk', chunk } }) as unknown as M,
});
const dataOnly = <M extends { data: Buffer }>(field: number): BulkField<M> => ({
  field,
  bytesOf: (m) => m.data,
  wrap: (data) => ({ data }) as M,
});

const image = images.ImageStoreService as unknown as Record<string, MethodDefinition>;
const IMAGES = 'stevedore.images.v1';
useBulk<images.ImportRequest>(image.import, 'request', chunkPart(FIELD_NUMBERS[`${IMAGES}.ImportRequest`].chunk));
useBulk<images.CommitRequest>(image.commit, 'request', chunkPart(FIELD_NUMBERS[`${IMAGES}.CommitRequest`].chunk));
const imageData = dataOnly<images.DataChunk>(FIELD_NUMBERS[`${IMAGES}.DataChunk`].data);
useBulk(image.load, 'request', imageData);
useBulk(image.save, 'response', imageData);
useBulk(image.putBlob, 'request', imageData);
useBulk(image.getBlob, 'response', imageData);

const runtime = containers.ContainerRuntimeService as unknown as Record<string, MethodDefinition>;
const CONTAINERS = 'stevedore.containers.v1';
useBulk<containers.PutArchiveRequest>(runtime.putArchive, 'request', chunkPart(FIELD_NUMBERS[`${CONTAINERS}.PutArchiveRequest`].chunk));
const containerData = dataOnly<containers.Chunk>(FIELD_NUMBERS[`${CONTAINERS}.Chunk`].data);
for (const name of ['export', 'getArchive', 'diff']) useBulk(runtime[name], 'response', containerData);

/*
 * A container's output (logs, attach): `Output { stream, data }`, alone or
 * as the `output` of an AttachReply, written with one copy of the data and
 * read as a view of the received message; and an attachment's stdin.
 */
const OUTPUT = FIELD_NUMBERS[`${CONTAINERS}.Output`];

/** What comes before an output's data: Output's fields, inside the field `prefix` names (an AttachReply's) if any. */
function outputHead(prefix: number[], stream: number, length: number): number[] {
  const inner = stream ? pushVarint([OUTPUT.stream << 3], stream) : [];
  // Empty data is left out, as proto3 leaves out a default.
  if (length) inner.push(...pushVarint([(OUTPUT.data << 3) | 2], length));
  return prefix.length ? pushVarint([...prefix], inner.length + length).concat(inner) : inner;
}

/** Output's encoding, and its data's place in it. */
function outputWire(prefix: number[], stream: number, data: Uint8Array): Buffer {
  const head = outputHead(prefix, stream, data.length);
  const out = Buffer.allocUnsafe(head.length + data.length);
  out.set(head, 0);
  out.set(data, head.length);
  return out;
}

/** Output's fields read from `buf` (from `at` to its end): only `stream` and `data`, else undefined. */
function readOutput(buf: Buffer, at: number): containers.Output | undefined {
  let stream = 0;
  let i = at;
  if (buf[i] === ((OUTPUT.stream << 3) | 0)) {
    const v = readVarint(buf, i + 1);
    if (!v) return undefined;
    stream = v.value;
    i = v.next;
  }
  if (i === buf.length) return { stream, data: Buffer.alloc(0) };
  if (buf[i] !== ((OUTPUT.data << 3) | 2)) return undefined;
  const length = readVarint(buf, i + 1);
  if (!length || length.next + length.value !== buf.length) return undefined;
  return { stream, data: buf.subarray(length.next) };
}

/** gRPC's frame header before a message: a compression flag and a 4-byte length. */
const GRPC_FRAME_HEADER = 5;
/**
 * A message marked so is sent by gRPC as it lies, its frame header already
 * written (patches/@grpc__grpc-js: without it, gRPC copies every message
 * into a new buffer behind its header).
 */
const FRAMED_MESSAGE = Symbol.for('grpc-js.framed-message');

/**
 * Room before an output's data for its headers: gRPC's frame header, an
 * AttachReply's field (a tag and a length of up to 5 bytes) and Output's
 * (the stream, a tag, a length of up to 5 bytes).
 */
export const OUTPUT_HEADER_ROOM = GRPC_FRAME_HEADER + 16;
/** Outputs laid out behind room for their headers: the data → the buffer it lies in, from the room's start. */
const outputsInPlace = new WeakMap<Uint8Array, Buffer>();

/**
 * An output whose data is `buffer[start, end)`, with OUTPUT_HEADER_ROOM
 * bytes free before it: its encoding and gRPC's frame header are written
 * there when it is sent (alone for logs, in an AttachReply for attach), and
 * gRPC sends it without another copy of the data.
 */
export function outputInPlace(buffer: Buffer, start: number, end: number, stream: number): containers.Output {
  const data = buffer.subarray(start, end);
  if (start >= OUTPUT_HEADER_ROOM && end > start) outputsInPlace.set(data, buffer.subarray(start - OUTPUT_HEADER_ROOM, end));
  return { stream, data };
}

/** Output data copied from `pieces` (read into a buffer that is read into again), laid out behind room for its headers. */
export function outputCopy(pieces: Uint8Array[]): Buffer {
  const buffer = Buffer.allocUnsafe(OUTPUT_HEADER_ROOM + pieces.reduce((n, p) => n + p.length, 0));
  let at = OUTPUT_HEADER_ROOM;
  for (const p of pieces) {
    buffer.set(p, at);
    at += p.length;
  }
  return outputInPlace(buffer, OUTPUT_HEADER_ROOM, buffer.length, 0).data as Buffer;
}

/** The framed message of an output laid out in place, its headers written into its room; undefined for any other. */
function encodeInPlace(prefix: number[], stream: number, data: Uint8Array): Buffer | undefined {
  const laid = outputsInPlace.get(data);
  if (!laid) return undefined;
  const head = outputHead(prefix, stream, data.length);
  const at = OUTPUT_HEADER_ROOM - head.length - GRPC_FRAME_HEADER;
  const framed = laid.subarray(at);
  framed[0] = 0; // not compressed
  framed.writeUInt32BE(framed.length - GRPC_FRAME_HEADER, 1);
  framed.set(head, GRPC_FRAME_HEADER);
  return Object.assign(framed, { [FRAMED_MESSAGE]: true });
}

function outputCodec(generated: Codec, wrapped?: number): Codec {
  const prefix = wrapped === undefined ? [] : [(wrapped << 3) | 2];
  return {
    serialize(value) {
      const v = value as { part?: { $case: string; output?: containers.Output } } & Partial<containers.Output>;
      const output = wrapped === undefined ? (v as containers.Output) : v.part?.$case === 'output' ? v.part.output : undefined;
      if (!output?.data) return generated.serialize(value);
      return encodeInPlace(prefix, output.stream, output.data) ?? outputWire(prefix, output.stream, output.data);
    },
    deserialize(message) {
      if (wrapped === undefined) return readOutput(message, 0) ?? generated.deserialize(message);
      if (message[0] !== prefix[0]) return generated.deserialize(message);
      const length = readVarint(message, 1);
      const output = length && length.next + length.value === message.length ? readOutput(message, length.next) : undefined;
      return output ? { part: { $case: 'output', output } } : generated.deserialize(message);
    },
  };
}

function useOutput(method: MethodDefinition, wrapped?: number): void {
  const codec = outputCodec({ serialize: method.responseSerialize, deserialize: method.responseDeserialize }, wrapped);
  method.responseSerialize = codec.serialize;
  method.responseDeserialize = codec.deserialize;
}
useOutput(runtime.logs);
useOutput(runtime.attach, FIELD_NUMBERS[`${CONTAINERS}.AttachReply`].output);
useBulk<containers.AttachRequest>(runtime.attach, 'request', {
  field: FIELD_NUMBERS[`${CONTAINERS}.AttachRequest`].stdin,
  bytesOf: (m) => (m.part?.$case === 'stdin' ? (m.part.stdin as Buffer) : undefined),
  wrap: (stdin) => ({ part: { $case: 'stdin', stdin } }),
});
