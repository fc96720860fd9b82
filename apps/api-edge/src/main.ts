import { runServiceMain } from '@stevedore/service-kit';
import { start } from './service';

runServiceMain('api-edge', start);
