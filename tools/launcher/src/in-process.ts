// A service run inside the supervisor's own process (STEVEDORE_PROCESSES=one):
// started and stopped through its `start`, probed like the others. There is
// no restart: a service that crashes takes the process, and the stack, down.
import type { ServiceStart, StoppableService } from '@stevedore/service-kit';
import { serviceModule, type ProcessState } from './layout';

export class InProcessService {
  readonly state: ProcessState;
  private running?: StoppableService;

  constructor(
    name: string,
    private readonly onChange: () => void,
  ) {
    this.state = { name, pid: process.pid, state: 'starting', restarts: 0, startedAt: new Date().toISOString(), lastExit: null };
  }

  get pid(): number {
    return process.pid;
  }

  async start(): Promise<void> {
    const { start } = (await import(serviceModule(this.state.name))) as { start: ServiceStart };
    this.running = await start({ signals: false });
    this.onChange();
  }

  setHealth(healthy: boolean): void {
    if (!this.running) return;
    const next = healthy ? 'healthy' : 'unhealthy';
    if (next !== this.state.state) {
      this.state.state = next;
      this.onChange();
    }
  }

  async stop(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    await running?.stop();
    this.state.state = 'stopped';
    this.onChange();
  }
}
