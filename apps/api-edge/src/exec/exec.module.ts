import { Module } from '@nestjs/common';
import { ExecHandlers } from './exec.handlers';
import { ExecRoutes } from './exec.routes';

@Module({ providers: [ExecHandlers, ExecRoutes], exports: [ExecRoutes] })
export class ExecModule {}
