export * from './version';
export * from './system';
export * from './events';
