// The image store's progress messages (pull, push, import) as Docker's
// progress stream writes them: an empty field is an absent one.
import type { ProgressMessage } from '@stevedore/docker-api';
import type { Progress } from './generated/stevedore/image_store.generated';

export function toProgressMessage(p: Progress): ProgressMessage {
  return {
    status: p.status,
    id: p.id || undefined,
    current: p.current || undefined,
    total: p.total || undefined,
    start: p.start || undefined,
    perLayer: p.perLayer,
    error: p.error || undefined,
  };
}
