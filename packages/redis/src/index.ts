export { BlockingConnections, connectRedis } from './connect';
export { EventLog, decodeEventEntry, logIdTimeMs, compareLogIds } from './event-log';
export type { NewEvent, LoggedEvent, EventLogLimits } from './event-log';
export type { default as Redis } from 'ioredis';
export { startScratchRedis, type ScratchRedis } from './scratch-redis';
