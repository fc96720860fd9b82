export { applyLayer, cleanEntryName, type AppliedLayer } from './apply-layer';
export { layerTar, layerTarSize, layerSize, treeTar, type TreeTarOptions } from './layer-tar';
export { statInRoot, goFileMode, type PathStat } from './in-root';
export { decompress, detectCompression, isArchive, type Compression } from './decompress';
export { makeWhiteouts, markOpaque, isOpaque, WHITEOUT_PREFIX, OPAQUE_MARKER } from './whiteouts';
export { RootDir, relInRoot, hostXattr, removeTree, removeTreeSoon } from './root-dir';
