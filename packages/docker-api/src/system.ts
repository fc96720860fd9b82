// JSON shapes of the system endpoints (/version, /info, /auth).

/** GET /version. Docker 1.0's keys, plus MinAPIVersion for today's clients. */
export interface VersionResponse {
  ApiVersion: string;
  Arch: string;
  GitCommit: string;
  GoVersion: string;
  KernelVersion: string;
  MinAPIVersion: string;
  Os: string;
  Version: string;
}

/**
 * GET /info. Docker 1.0's keys (booleans as JSON booleans, which today's CLI
 * needs), plus the host facts later engines added and clients print.
 */
export interface InfoResponse {
  Containers: number;
  ContainersPaused: number;
  ContainersRunning: number;
  ContainersStopped: number;
  Debug: boolean;
  DockerRootDir: string;
  Driver: string;
  DriverStatus: Array<[string, string]>;
  ExecutionDriver: string;
  ID: string;
  IPv4Forwarding: boolean;
  Images: number;
  IndexServerAddress: string;
  InitPath: string;
  InitSha1: string;
  KernelVersion: string;
  MemTotal: number;
  MemoryLimit: boolean;
  NCPU: number;
  NEventsListener: number;
  NFd: number;
  NGoroutines: number;
  Name: string;
  OSType: string;
  OperatingSystem: string;
  Architecture: string;
  ServerVersion: string;
  SwapLimit: boolean;
  CgroupVersion: string;
}

/** The body of POST /auth and, base64url-encoded, of X-Registry-Auth. */
export interface AuthConfigJson {
  username?: string;
  password?: string;
  auth?: string;
  email?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface AuthResponse {
  Status: string;
  IdentityToken?: string;
}
