// Generates TypeScript from every .proto under proto/ with ts-proto
// (grpc-js service definitions and clients). Output: src/generated/*.generated.ts,
// never edited by hand and not committed.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const protoDir = path.join(root, 'proto');
const outDir = path.join(root, 'src', 'generated');
const plugin = require.resolve('ts-proto/protoc-gen-ts_proto');

function listProtos(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listProtos(path.join(dir, e.name)) : e.name.endsWith('.proto') ? [path.join(dir, e.name)] : [],
  );
}

fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
execFileSync(
  'protoc',
  [
    `--plugin=protoc-gen-ts_proto=${plugin}`,
    `--ts_proto_out=${outDir}`,
    '--ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,env=node,forceLong=number,fileSuffix=.generated,useOptionals=none,oneof=unions',
    `--proto_path=${protoDir}`,
    ...listProtos(protoDir),
  ],
  { stdio: 'inherit' },
);
