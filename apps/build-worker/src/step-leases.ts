// Identical steps built once across the farm: before a build runs a step the
// cache missed, it takes the step's lease in Redis (the key is a hash of the
// parent image and the step's config, so two builds that share a prefix of
// steps ask for the same leases in the same order). One build holds it and
// builds the step; another that asks meanwhile waits until the lease is gone
// and looks in the cache again: the holder's commit is a hit. The lease
// expires LEASE_MS after its holder last renewed it, so the death of the
// holder's node costs the waiters that long, then one of them builds it.
import { createHash, randomBytes } from 'node:crypto';
import type { BuildKeys } from '@stevedore/builds';
import type { Redis } from '@stevedore/redis';

const LEASE_MS = 10_000;
const POLL_MS = 200;

/** KEYS: the lease. ARGV: the holder's token, then a TTL (renew) or nothing (release). */
const IF_HELD = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])
`;

/** The lease's key for a step: its parent image and its config as the cache compares them. */
export function stepHash(parent: string, containerConfigJson: string): string {
  return createHash('sha256').update(parent).update('\n').update(containerConfigJson).digest('hex');
}

export interface StepLeasing {
  /**
   * Takes the step's lease, waiting while another build holds it; resolves
   * with whether it waited (the other build's result is then in the cache,
   * unless its step failed). `waiting` is called once when a wait begins.
   * Rejects when `signal` aborts.
   */
  take(hash: string, signal: AbortSignal, waiting: () => Promise<void>): Promise<boolean>;
  /** Lets the lease held go (after the step's commit, or its failure). */
  release(): Promise<void>;
}

export class StepLeases implements StepLeasing {
  private readonly token = randomBytes(8).toString('hex');
  private held?: { key: string; timer: NodeJS.Timeout };

  constructor(
    private readonly redis: Redis,
    private readonly keys: BuildKeys,
    /** How long a lease outlives its holder's last renewal (renewed every third of it). */
    private readonly leaseMs = LEASE_MS,
  ) {}

  async take(hash: string, signal: AbortSignal, waiting: () => Promise<void>): Promise<boolean> {
    await this.release();
    const key = this.keys.step(hash);
    let said = false;
    for (;;) {
      if (signal.aborted) throw new Error('the build was cancelled while it waited for a step');
      if ((await this.redis.set(key, this.token, 'PX', this.leaseMs, 'NX')) === 'OK') {
        const timer = setInterval(() => void this.redis.eval(IF_HELD, 1, key, this.token, String(this.leaseMs)).catch(() => undefined), this.leaseMs / 3);
        this.held = { key, timer };
        return said;
      }
      if (!said) {
        said = true;
        await waiting();
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Stops renewing without letting go (what a holder that died does), for tests. */
  abandon(): void {
    if (this.held) clearInterval(this.held.timer);
    this.held = undefined;
  }

  async release(): Promise<void> {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    clearInterval(held.timer);
    await this.redis.eval(IF_HELD, 1, held.key, this.token).catch(() => undefined);
  }
}
