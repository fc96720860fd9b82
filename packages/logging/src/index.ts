// Structured JSON logs (pino) for every process, and the request id that
// follows a request from the API edge through gRPC metadata to the services.
import { randomBytes } from 'node:crypto';
import pino from 'pino';

export type Logger = pino.Logger;

/** HTTP header a client may set, and gRPC metadata key, carrying the request id. */
export const REQUEST_ID_HEADER = 'x-request-id';

export function createLogger(service: string, level: string): Logger {
  return pino(
    { level, base: { service, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false, minLength: 0 }),
  );
}

/** Random bytes drawn a page at a time: one call per request cost more than the rest of a ping. */
let pool = Buffer.alloc(0);
let used = 0;

export function newRequestId(): string {
  if (used + 8 > pool.length) {
    pool = randomBytes(4096);
    used = 0;
  }
  used += 8;
  return pool.toString('hex', used - 8, used);
}

/** A client-chosen request id is kept when it is short and printable. */
export function acceptRequestId(value: string | string[] | undefined): string {
  const v = Array.isArray(value) ? value[0] : value;
  return v && /^[\w.:-]{1,64}$/.test(v) ? v : newRequestId();
}
