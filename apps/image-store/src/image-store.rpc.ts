// The ImageStore gRPC service. (Images themselves arrive with the image store issue.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { images } from '@stevedore/contracts';
import type { StevedoreConfig } from '@stevedore/config';
import type { Logger } from '@stevedore/logging';
import { CONFIG, LOGGER, unary } from '@stevedore/service-kit';
import { checkLogin } from './registry/login';
import { parseRegistryAddress } from './registry/registry-address';

@Injectable()
export class ImageStoreRpc {
  private readonly insecure = (process.env.STEVEDORE_INSECURE_REGISTRIES ?? '').split(',').filter(Boolean);

  constructor(
    @Inject(CONFIG) private readonly config: StevedoreConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  private imageRoot(): string {
    return path.join(this.config.root, 'images');
  }

  implementation(): images.ImageStoreServer {
    return {
      info: unary<images.ImageStoreInfoRequest, images.ImageStoreInfo>(this.log, 'Info', async () => {
        const dir = path.join(this.imageRoot(), 'graph');
        const count = fs.existsSync(dir) ? fs.readdirSync(dir).length : 0;
        return {
          images: count,
          driver: 'overlay',
          driverStatus: [
            { key: 'Root Dir', value: this.imageRoot() },
            { key: 'Backing Filesystem', value: 'overlayfs layers' },
          ],
          rootDir: this.imageRoot(),
        };
      }),
      checkAuth: unary<images.AuthConfig, images.CheckAuthResponse>(this.log, 'CheckAuth', async (req, ctx) => {
        const address = parseRegistryAddress(req.serverAddress, this.insecure);
        let { username, password } = req;
        if (!username && req.auth) {
          const decoded = Buffer.from(req.auth, 'base64').toString();
          const colon = decoded.indexOf(':');
          username = decoded.slice(0, colon);
          password = decoded.slice(colon + 1);
        }
        const status = await checkLogin(address, { username, password });
        ctx.log.info({ registry: address.host, username }, 'login checked');
        return { status, identityToken: '' };
      }),
    };
  }
}
