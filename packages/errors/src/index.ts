// The error model. A service throws a StevedoreError of a kind; the kind
// travels as a gRPC status code; the API edge turns the code into Docker's
// HTTP status. This file is the one place where those mappings live.
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';

export type ErrorKind =
  | 'notFound' // Docker: "No such ..." -> 404
  | 'conflict' // "Conflict ..." -> 409
  | 'invalid' // bad request -> 400
  | 'notAllowed' // Docker 1.0's "Impossible ..." -> 406
  | 'unauthorized' // "Wrong login/password" -> 401
  | 'forbidden' // 403
  | 'unavailable' // a service or a registry cannot be reached -> 503
  | 'refused' // a request Docker 1.0 turned down with a 500 (bad names, ...): not a server fault
  | 'internal'; // everything else -> 500

export class StevedoreError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'StevedoreError';
  }
}

export const notFound = (message: string) => new StevedoreError('notFound', message);
export const conflict = (message: string) => new StevedoreError('conflict', message);
export const invalid = (message: string) => new StevedoreError('invalid', message);
export const notAllowed = (message: string) => new StevedoreError('notAllowed', message);
export const unauthorized = (message: string) => new StevedoreError('unauthorized', message);
export const unavailable = (message: string) => new StevedoreError('unavailable', message);
export const internal = (message: string) => new StevedoreError('internal', message);
export const refused = (message: string) => new StevedoreError('refused', message);

const GRPC_CODE_OF_KIND: Record<ErrorKind, GrpcStatus> = {
  notFound: GrpcStatus.NOT_FOUND,
  conflict: GrpcStatus.ALREADY_EXISTS,
  invalid: GrpcStatus.INVALID_ARGUMENT,
  notAllowed: GrpcStatus.FAILED_PRECONDITION,
  unauthorized: GrpcStatus.UNAUTHENTICATED,
  forbidden: GrpcStatus.PERMISSION_DENIED,
  unavailable: GrpcStatus.UNAVAILABLE,
  refused: GrpcStatus.FAILED_PRECONDITION,
  internal: GrpcStatus.INTERNAL,
};

const HTTP_STATUS_OF_KIND: Record<ErrorKind, number> = {
  notFound: 404,
  conflict: 409,
  invalid: 400,
  notAllowed: 406,
  unauthorized: 401,
  forbidden: 403,
  unavailable: 503,
  refused: 500,
  internal: 500,
};

function kindOfGrpcCode(code: number | undefined): ErrorKind {
  for (const [kind, c] of Object.entries(GRPC_CODE_OF_KIND)) if (c === code) return kind as ErrorKind;
  if (code === GrpcStatus.DEADLINE_EXCEEDED) return 'unavailable';
  return 'internal';
}

/** gRPC metadata key naming the kind of an error a service raised on purpose. */
const KIND_METADATA = 'stevedore-error-kind';

/** Any thrown value as a StevedoreError (unknown errors become `internal`). */
export function asStevedoreError(err: unknown): StevedoreError {
  if (err instanceof StevedoreError) return err;
  if (isServiceError(err)) {
    const kind = err.metadata.get(KIND_METADATA)[0];
    return new StevedoreError(typeof kind === 'string' && kind in HTTP_STATUS_OF_KIND ? (kind as ErrorKind) : kindOfGrpcCode(err.code), err.details || err.message);
  }
  return new StevedoreError('internal', err instanceof Error ? err.message : String(err));
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'metadata' in err;
}

/** What a gRPC handler sends back for an error. */
export function toGrpcError(err: unknown): Partial<ServiceError> {
  const e = asStevedoreError(err);
  const metadata = new Metadata();
  metadata.set(KIND_METADATA, e.kind);
  return { code: GRPC_CODE_OF_KIND[e.kind], details: e.message, metadata };
}

/** What the API edge answers for an error: Docker's status code and message. */
export function toHttpError(err: unknown, service?: string): { status: number; message: string } {
  const e = asStevedoreError(err);
  if (isServiceError(err) && err.metadata.get(KIND_METADATA).length === 0 && err.code !== GrpcStatus.INTERNAL && err.code !== GrpcStatus.UNKNOWN) {
    // The service itself did not answer (no kind from it): say which one.
    const what = service ? `the ${service} service` : 'a Stevedore service';
    return { status: 503, message: `Cannot reach ${what}: ${err.details || err.message}` };
  }
  return { status: HTTP_STATUS_OF_KIND[e.kind], message: e.message };
}

export function httpStatusOf(kind: ErrorKind): number {
  return HTTP_STATUS_OF_KIND[kind];
}
