// The API edge's view of the services: one typed client each. A failed call
// rejects with a StevedoreError whose status and message are already
// Docker's (a service that cannot be reached is named).
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { containers, events, images } from '@stevedore/contracts';
import type { StevedoreConfig } from '@stevedore/config';
import { connectService, type ServiceClient } from '@stevedore/service-kit';
import { CONFIG } from '../nest-context';

@Injectable()
export class Backends implements OnApplicationShutdown {
  readonly events: ServiceClient<typeof events.EventsService>;
  readonly images: ServiceClient<typeof images.ImageStoreService>;
  readonly containers: ServiceClient<typeof containers.ContainerRuntimeService>;

  constructor(@Inject(CONFIG) config: StevedoreConfig) {
    this.events = connectService(events.EventsService, config, 'events');
    this.images = connectService(images.ImageStoreService, config, 'image-store');
    this.containers = connectService(containers.ContainerRuntimeService, config, 'container-runtime');
  }

  onApplicationShutdown(): void {
    for (const c of [this.events, this.images, this.containers]) c.close();
  }
}
