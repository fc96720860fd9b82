import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { conflict, notFound, toGrpcError, toHttpError, StevedoreError } from './index';

function asServiceError(e: ReturnType<typeof toGrpcError>) {
  return Object.assign(new Error(e.details), e) as ServiceError;
}

test('a kind survives the trip through gRPC and becomes Docker\'s status', () => {
  assert.deepEqual(toHttpError(asServiceError(toGrpcError(notFound('No such container: x')))), { status: 404, message: 'No such container: x' });
  assert.equal(toHttpError(asServiceError(toGrpcError(conflict('Conflict, x')))).status, 409);
  assert.equal(toHttpError(asServiceError(toGrpcError(new StevedoreError('notAllowed', 'Impossible')))).status, 406);
  assert.equal(toHttpError(asServiceError(toGrpcError(new Error('boom')))).status, 500);
});

test('a service that does not answer is a 503 naming the service', () => {
  const transport = Object.assign(new Error('14 UNAVAILABLE: No connection established'), {
    code: status.UNAVAILABLE, details: 'No connection established', metadata: new Metadata(),
  });
  assert.deepEqual(toHttpError(transport, 'events'), { status: 503, message: 'Cannot reach the events service: No connection established' });
});
