// The gRPC contracts of every Stevedore service. Everything here is generated
// from ../proto (bulk-bytes.ts gives the messages that carry bulk bytes
// faster codecs); import from this package, never from another service.
export * as health from './generated/grpc_health_v1.generated';
export * as events from './generated/stevedore/events.generated';
export * as images from './generated/stevedore/image_store.generated';
export * as containers from './generated/stevedore/container_runtime.generated';

import './bulk-bytes';
export { bytesFieldHeader, bytesFieldPayload, gatherPayload, OUTPUT_HEADER_ROOM, outputCopy, outputInPlace } from './bulk-bytes';

/** Events: the response header of Subscribe naming the subscription's starting log position (see after_log_id). */
export const EVENTS_LOG_POSITION_HEADER = 'x-log-position';
export { containerConfigText, hostConfigText, imageMetadataText, type JsonText } from './json-text';
export { toProgressMessage } from './progress';
export { Frame, ShimConnection } from './monitor-connection';
