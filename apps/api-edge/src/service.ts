import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { secureDataRoot, serviceContext, type ServiceStart } from '@stevedore/service-kit';
import { PinoNestLogger } from './nest-context';
import { AppModule } from './app.module';
import { HttpFront } from './http/http-front';

/** Starts the API edge (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start: ServiceStart = async ({ signals }) => {
  const { config, log } = serviceContext('api-edge');
  secureDataRoot(config);
  const app = await NestFactory.createApplicationContext(AppModule, { logger: new PinoNestLogger(log), abortOnError: false });
  if (signals) app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  await app.get(HttpFront).listen();
  return { stop: () => app.close() };
};
