// Containers' host configuration (start's body in Docker 1.0; create's
// HostConfig for today's clients).

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

export interface HostConfig {
  Binds?: string[] | null;
  ContainerIDFile?: string;
  LxcConf?: Array<{ Key: string; Value: string }> | null;
  Privileged?: boolean;
  PortBindings?: Record<string, PortBinding[] | null> | null;
  Links?: string[] | null;
  PublishAllPorts?: boolean;
  Dns?: string[] | null;
  DnsSearch?: string[] | null;
  VolumesFrom?: string[] | null;
  NetworkMode?: string;
  /** Today's clients put limits here rather than in Config. */
  Memory?: number;
  MemorySwap?: number;
  CpuShares?: number;
  CpusetCpus?: string;
}
