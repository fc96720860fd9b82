// The builder's cache rule: a step may reuse an image whose parent is the
// current image and whose container_config equals the config the step is
// about to use, compared on the fields Docker 1.0 compared (Hostname,
// WorkingDir, Image and the like are not). A config with OpenStdin never
// matches.
import type { ContainerConfig } from './image';

const sameList = (a?: string[] | null, b?: string[] | null): boolean => {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

const sameKeys = (a?: Record<string, unknown> | null, b?: Record<string, unknown> | null): boolean => {
  const x = Object.keys(a ?? {}).sort();
  const y = Object.keys(b ?? {}).sort();
  return sameList(x, y);
};

export function sameBuildConfig(a: ContainerConfig, b: ContainerConfig): boolean {
  if (a.OpenStdin || b.OpenStdin) return false;
  const scalars = ['User', 'Memory', 'MemorySwap', 'CpuShares', 'AttachStdout', 'AttachStderr', 'Tty'] as const;
  const value = (c: ContainerConfig, k: (typeof scalars)[number]) => (c as Record<string, unknown>)[k] || undefined;
  return (
    sameList(a.Cmd, b.Cmd) &&
    sameList(a.Env, b.Env) &&
    sameList(a.Entrypoint, b.Entrypoint) &&
    sameList(a.PortSpecs, b.PortSpecs) &&
    sameKeys(a.ExposedPorts, b.ExposedPorts) &&
    sameKeys(a.Volumes, b.Volumes) &&
    scalars.every((k) => value(a, k) === value(b, k))
  );
}
