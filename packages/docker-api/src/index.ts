export * from './version';
export * from './system';
export * from './events';
export * from './image';
export * from './progress';
export * from './container';
export * from './build-cache';
export * from './json';
