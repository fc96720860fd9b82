// grpc.health.v1 on every service, and the probe the launcher uses.
import * as grpc from '@grpc/grpc-js';
import { health } from '@stevedore/contracts';

const ServingStatus = health.HealthCheckResponse_ServingStatus;

export class HealthState {
  private serving = false;
  private readonly watchers = new Set<grpc.ServerWritableStream<health.HealthCheckRequest, health.HealthCheckResponse>>();

  setServing(serving: boolean): void {
    this.serving = serving;
    for (const w of this.watchers) w.write({ status: this.status() });
  }

  status(): health.HealthCheckResponse_ServingStatus {
    return this.serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  }

  implementation(): health.HealthServer {
    return {
      check: (_call, callback) => callback(null, { status: this.status() }),
      watch: (call) => {
        this.watchers.add(call);
        call.write({ status: this.status() });
        call.on('cancelled', () => this.watchers.delete(call));
      },
    };
  }
}

/** Resolves true when the service at `address` answers SERVING within the timeout. */
export function probeHealth(address: string, credentials: grpc.ChannelCredentials, timeoutMs = 1000): Promise<boolean> {
  const client = new health.HealthClient(address, credentials);
  return new Promise((resolve) => {
    client.check({ service: '' }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      resolve(!err && res?.status === ServingStatus.SERVING);
    });
  });
}
