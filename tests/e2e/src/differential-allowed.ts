// Differences between Stevedore's answers and the Docker engine 20.10's to
// the same v1.12 requests that are deliberate, each with its reason. The
// differential test fails on a difference not listed here, and on an entry
// that no longer occurs. Most are one rule: at v1.12 Stevedore answers as
// the Docker 1.0 daemon did (docs/api), while the engine 20.10 answers
// a v1.12 request with its own, later shapes.
const LATER = 'added after Docker 1.0: a v1.12 client never reads it';
const DOCKER_1_0 = 'a key Docker 1.0 sent at v1.12 (later engines dropped or moved it)';

export const ALLOWED: Array<{ match: RegExp; reason: string }> = [
  { match: /^GET \/version: \$\.(Platform|Components|BuildTime) only in reference$/, reason: LATER },
  { match: /^GET \/info: \$\.\w+ only in reference$/, reason: LATER },
  { match: /^GET \/info: \$\.(InitPath|InitSha1) only in stevedore$/, reason: DOCKER_1_0 },
  { match: /^GET \/images\/json: \$\[\]\.(Containers|Labels|RepoDigests|SharedSize) only in reference$/, reason: LATER },
  { match: /^GET \/images\/\(name\)\/json: \$\.(RepoTags|RepoDigests|GraphDriver|RootFS|Metadata|ContainerConfig\.Labels) only in reference$/, reason: LATER },
  { match: /^GET \/images\/\(name\)\/json: \$\.ContainerConfig\.(Memory|MemorySwap|CpuShares|Cpuset|PortSpecs|ExposedPorts|NetworkDisabled) only in stevedore$/, reason: DOCKER_1_0 },
  { match: /^GET \/containers\/json\?all=1: \$\[\]\.(ImageID|Labels|State|HostConfig|NetworkSettings|Mounts) only in reference$/, reason: LATER },
  { match: /^POST \/containers\/\(id\)\/wait: \$\.Error only in reference$/, reason: LATER },
  { match: /^GET \/containers\/\(id\)\/json: \$\.(State\.(Restarting|OOMKilled|Dead|Error)|LogPath|RestartCount|Platform|AppArmorProfile|ExecIDs|GraphDriver|HostConfig\.\w+|Config\.(Labels|MacAddress|VolumeDriver)|NetworkSettings\.\w+) only in reference$/, reason: LATER },
  { match: /^GET \/containers\/\(id\)\/json: \$\.(HostConfig\.LxcConf|NetworkSettings\.PortMapping|ExecDriver|Config\.(Memory|MemorySwap|CpuShares|Cpuset|PortSpecs)) only in stevedore$/, reason: DOCKER_1_0 },
  { match: /^POST \/containers\/create with a taken name: status 409 \(reference 400\)$/, reason: 'Docker 1.0 answered a taken name with 409 Conflict (ENDPOINTS.md #1)' },
  { match: /^GET \/containers\/\(id\)\/changes: body json \(reference null\)$/, reason: 'Docker 1.0 wrote an empty list as [] (its engine table), 20.10 as null; both decode to no changes' },
  { match: /^POST \/containers\/\(id\)\/copy: content type "application\/octet-stream" \(reference "application\/x-tar"\)$/, reason: 'Docker 1.0 set no content type and Go sniffed the tar as application/octet-stream' },
  { match: /^GET \/containers\/\(id\)\/logs: content type "application\/octet-stream" \(reference ""\)$/, reason: 'Docker 1.0 set no content type and Go sniffed the first frame as application/octet-stream; 20.10 sends its headers before any byte' },
  { match: /^GET \/containers\/\(id\)\/top of a stopped container: status 500 \(reference 409\)$/, reason: 'Docker 1.0 answered 500 `Container <id> is not running` (ENDPOINTS.md #5)' },
  { match: /^GET \/v1\.13\/version: (status 404 \(reference 200\)|content type "text\/plain" \(reference "application\/json"\)|body text \(reference json\))$/, reason: 'Stevedore serves v1.0–v1.12 as Docker 1.0 did: a newer version is 404 (VERSIONS.md); 20.10 serves up to v1.41' },
];
