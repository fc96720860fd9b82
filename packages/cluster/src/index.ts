export { ALIVE_MS, HEARTBEAT_MS, Membership, type Member, type NodeCounts, type NodeRecord } from './membership';
export { NodeHeartbeat } from './heartbeat';
export { ContainerIndex, type ContainerSummary, type Located } from './container-index';
export { chooseNode, meetsConstraints, PlacementError, takeFilters, valueMatches, type Filter, type PlacementRequest, type Strategy } from './placement';
export { layerBlobDigest, layerBlobPath } from './layer-blobs';
export { HeldImages } from './held-images';
