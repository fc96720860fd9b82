// Docker's own structures (a container's Config and HostConfig, an image's
// stored metadata) cross gRPC as their JSON text, in the `*_json` fields:
// kept exactly as Docker's clients wrote them — null beside empty, keys an
// older or newer client sent — which the API gives back in inspect, and
// which typed messages would lose. These codecs are the one place that text
// is written and read, each field with its type; '' means absent.
import type { ContainerConfig, HostConfig, StoredImage } from '@stevedore/docker-api';

export interface JsonText<T> {
  encode(value: T | undefined): string;
  /** The structure, or undefined for ''. */
  decode(text: string): T | undefined;
}

function jsonText<T>(): JsonText<T> {
  return {
    encode: (value) => (value === undefined ? '' : JSON.stringify(value)),
    decode: (text) => (text ? (JSON.parse(text) as T) : undefined),
  };
}

/** `config_json`, `container_config_json`: a container's Config. */
export const containerConfigText = jsonText<ContainerConfig>();
/** `host_config_json`: a container's HostConfig. */
export const hostConfigText = jsonText<HostConfig>();
/** `metadata_json`: an image's metadata as stored (Docker 1.0's `json` file). */
export const imageMetadataText = jsonText<StoredImage>();
