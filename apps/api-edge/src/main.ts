import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { PinoNestLogger, serviceContext } from '@stevedore/service-kit';
import { AppModule } from './app.module';
import { HttpFront } from './http/http-front';

async function main(): Promise<void> {
  const { log } = serviceContext('api-edge');
  const app = await NestFactory.createApplicationContext(AppModule, { logger: new PinoNestLogger(log), abortOnError: false });
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  await app.get(HttpFront).listen();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
