export * from './credentials';
export * from './rpc';
export * from './health';
export * from './grpc-service';
export * from './commit';
export * from './data-root';
export * from './api-listeners';
export * from './typed-grpc';
