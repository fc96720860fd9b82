// Bulk bytes (imports, loads, saves, exports, archives) cross gRPC in
// messages whose only content is one `bytes` field. The generated codecs
// copy such a payload several times (into a growing buffer, out of it, into
// a Buffer) and then the copy is garbage; at hundreds of megabytes that was
// most of the API edge's CPU. These codecs write the field's tag and length
// and copy the bytes once, and read the payload as a view of the received
// message. Any other message of the same type goes through the generated codec.
import * as containers from './generated/stevedore/container_runtime.generated';
import * as images from './generated/stevedore/image_store.generated';
import { BYTES_FIELDS } from './generated/bytes-fields.generated';

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

/** The length-delimited tag and length that lead a bytes field of `length` bytes. */
export function bytesFieldHeader(field: number, length: number): Buffer {
  const out = [(field << 3) | 2];
  let n = length;
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** The payload of a message that is exactly one bytes field `field`, or undefined. */
export function bytesFieldPayload(field: number, message: Buffer): Buffer | undefined {
  if (message.length === 0 || message[0] !== ((field << 3) | 2)) return undefined;
  let length = 0;
  let scale = 1;
  let i = 1;
  for (;;) {
    if (i >= message.length || i > 5) return undefined;
    const byte = message[i++];
    length += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) break;
    scale *= 128;
  }
  return i + length === message.length ? message.subarray(i) : undefined;
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
useBulk<images.ImportRequest>(image.import, 'request', chunkPart(BYTES_FIELDS[`${IMAGES}.ImportRequest`].chunk));
useBulk<images.CommitRequest>(image.commit, 'request', chunkPart(BYTES_FIELDS[`${IMAGES}.CommitRequest`].chunk));
const imageData = dataOnly<images.DataChunk>(BYTES_FIELDS[`${IMAGES}.DataChunk`].data);
useBulk(image.load, 'request', imageData);
useBulk(image.save, 'response', imageData);
useBulk(image.putBlob, 'request', imageData);
useBulk(image.getBlob, 'response', imageData);

const runtime = containers.ContainerRuntimeService as unknown as Record<string, MethodDefinition>;
const CONTAINERS = 'stevedore.containers.v1';
useBulk<containers.PutArchiveRequest>(runtime.putArchive, 'request', chunkPart(BYTES_FIELDS[`${CONTAINERS}.PutArchiveRequest`].chunk));
const containerData = dataOnly<containers.Chunk>(BYTES_FIELDS[`${CONTAINERS}.Chunk`].data);
for (const name of ['export', 'getArchive', 'diff']) useBulk(runtime[name], 'response', containerData);
