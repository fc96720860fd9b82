// What Docker 1.0's create adjusted in a container's config, and the
// warnings it answered with: `PortSpecs` (the v1.0 docs' way of exposing
// ports) migrated to `ExposedPorts`, and limits the kernel cannot apply
// discarded.
import type { ContainerConfig } from '@stevedore/docker-api';
import { refused } from '@stevedore/errors';
import type { CgroupFacts } from './host-facts';

export const WARNINGS = {
  memory: 'Your kernel does not support memory limit capabilities. Limitation discarded.',
  swap: 'Your kernel does not support swap limit capabilities. Limitation discarded.',
  forwarding: 'IPv4 forwarding is disabled.',
  portSpecs: 'The mapping to public ports on your host via Dockerfile EXPOSE (host:port:port) has been deprecated. Use -p to publish the ports.',
};

/**
 * Applies Docker 1.0's create-time rules to `config` (changed in place) and
 * returns the warnings. A `host:container` mapping in PortSpecs only warns:
 * the container port is exposed, nothing is published.
 */
export function createWarnings(config: ContainerConfig, facts: CgroupFacts & { ipv4Forwarding: boolean }): string[] {
  const warnings: string[] = [];
  if (config.PortSpecs?.length) {
    const exposed: Record<string, object> = { ...(config.ExposedPorts ?? {}) };
    for (const spec of config.PortSpecs) {
      const [port, proto = 'tcp'] = spec.split(':').pop()!.split('/');
      if (!/^\d+$/.test(port) || !['tcp', 'udp'].includes(proto)) throw refused(`Invalid port specification: ${spec}`);
      exposed[`${port}/${proto}`] = {};
    }
    if (config.PortSpecs.some((s) => s.includes(':'))) warnings.push(WARNINGS.portSpecs);
    config.ExposedPorts = exposed;
    config.PortSpecs = null;
  }
  if ((config.Memory ?? 0) > 0 && !facts.memoryLimit) {
    warnings.push(WARNINGS.memory);
    config.Memory = 0;
  }
  if ((config.Memory ?? 0) > 0 && !facts.swapLimit) {
    warnings.push(WARNINGS.swap);
    config.MemorySwap = -1;
  }
  if (!config.NetworkDisabled && !facts.ipv4Forwarding) warnings.push(WARNINGS.forwarding);
  return warnings;
}
