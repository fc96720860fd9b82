// Images as Docker 1.0 stored and served them.

/** A container's configuration (create's body; an image's `config`). */
export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  Memory?: number;
  MemorySwap?: number;
  CpuShares?: number;
  Cpuset?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  PortSpecs?: string[] | null;
  ExposedPorts?: Record<string, object> | null;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Image?: string;
  Volumes?: Record<string, object> | null;
  WorkingDir?: string;
  Entrypoint?: string[] | null;
  NetworkDisabled?: boolean;
  OnBuild?: string[] | null;
}

/**
 * An image's metadata as Docker 1.0 stored it (its `json` file, and what
 * GET /images/(name)/json answered before v1.12). Empty ones are omitted.
 */
export interface StoredImage {
  id: string;
  parent?: string;
  comment?: string;
  /** RFC 3339 with nanoseconds. */
  created: string;
  container?: string;
  container_config?: ContainerConfig;
  docker_version?: string;
  author?: string;
  config?: ContainerConfig;
  architecture?: string;
  os?: string;
  Size?: number;
}

/** GET /images/(name)/json from v1.12: every key, CamelCase, sorted. */
export interface ImageInspect {
  Architecture: string;
  Author: string;
  Comment: string;
  Config: ContainerConfig | null;
  Container: string;
  ContainerConfig: ContainerConfig;
  Created: string;
  DockerVersion: string;
  Id: string;
  Os: string;
  Parent: string;
  Size: number;
  VirtualSize: number;
}

/** GET /images/json entry from v1.7. */
export interface ImageListEntry {
  Created: number;
  Id: string;
  ParentId: string;
  RepoTags: string[];
  Size: number;
  VirtualSize: number;
}

/** GET /images/json entry before v1.7: one per repository:tag. */
export interface ImageListEntryV1_0 {
  Created: number;
  Id: string;
  Repository: string;
  Size: number;
  Tag: string;
  VirtualSize: number;
}

export interface HistoryEntryJson {
  Id: string;
  Created: number;
  CreatedBy: string;
  Size: number;
  Tags: string[] | null;
  Comment: string;
}
