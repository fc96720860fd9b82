// What NestJS gives the API edge's modules: the config and the logger under
// injection tokens, and Nest's own log lines through pino.
import type { LoggerService } from '@nestjs/common';
import type { Logger } from '@stevedore/logging';
import { serviceContext } from '@stevedore/service-kit';

export const CONFIG = Symbol('StevedoreConfig');
export const LOGGER = Symbol('Logger');

/** The config and logger providers of the edge's root module. */
export const CONTEXT_PROVIDERS = [
  { provide: CONFIG, useFactory: () => serviceContext('api-edge').config },
  { provide: LOGGER, useFactory: () => serviceContext('api-edge').log },
];

/** Nest's own log lines, through pino. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly pino: Logger) {}
  log(message: unknown, context?: string) { this.pino.debug({ context }, String(message)); }
  error(message: unknown, trace?: string, context?: string) { this.pino.error({ context, trace }, String(message)); }
  warn(message: unknown, context?: string) { this.pino.warn({ context }, String(message)); }
  debug(message: unknown, context?: string) { this.pino.debug({ context }, String(message)); }
  verbose(message: unknown, context?: string) { this.pino.trace({ context }, String(message)); }
}
