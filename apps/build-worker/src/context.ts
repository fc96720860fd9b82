// A build's context in a directory of the worker's own: the archive the API
// edge stored (fetched from the image store's blob store, decompressed as
// its first bytes say, extracted with nothing outside the directory), or
// what `remote` names: a git repository (cloned) or a Dockerfile's URL.
// `.dockerignore` patterns are applied here too (the CLI applies them
// before sending; other clients may not).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { applyLayer, decompress } from '@stevedore/archive';
import type { images } from '@stevedore/contracts';
import { asStevedoreError, refused } from '@stevedore/errors';
import { callOptions } from '@stevedore/service-kit';

const run = promisify(execFile);

/** Counts bytes through; fails past the limit. */
function limited(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(refused(`The build context is larger than the limit of ${max} bytes (STEVEDORE_BUILD_CONTEXT_MAX)`));
      else cb(null, chunk);
    },
  });
}

export async function fetchContext(store: images.ImageStoreClient, blob: string, dir: string, maxBytes: number, requestId: string): Promise<void> {
  const call = store.getBlob({ id: blob }, callOptions(requestId).metadata);
  const bytes = Readable.from(
    (async function* () {
      for await (const c of call as AsyncIterable<images.DataChunk>) yield c.data;
    })(),
  );
  const { stream } = await decompress(bytes);
  const counted = stream.pipe(limited(maxBytes));
  stream.on('error', (err) => counted.destroy(err));
  try {
    await applyLayer(counted, dir, { allowEmpty: true });
  } catch (err) {
    call.cancel();
    const e = asStevedoreError(err);
    if (e.kind === 'refused' || e.kind === 'notFound') throw e;
    throw refused(`The build context is not a valid archive: ${e.message}`);
  }
}

/** A git URL as Docker 1.0 recognised one. */
export function isGitUrl(remote: string): boolean {
  return remote.startsWith('git://') || remote.startsWith('github.com/') || remote.startsWith('git@github.com:') || (/^https?:\/\//.test(remote) && remote.endsWith('.git'));
}

export async function remoteContext(remote: string, dir: string, maxBytes: number): Promise<void> {
  if (isGitUrl(remote)) {
    const url = remote.startsWith('github.com/') ? `https://${remote}` : remote;
    try {
      await run('git', ['clone', '--recursive', '--depth', '1', url, dir], { timeout: 300_000 });
    } catch (err) {
      const e = err as { message: string; stderr?: string };
      throw refused(`Error trying to use git: ${e.message.split('\n')[0]} (${(e.stderr ?? '').trim()})`);
    }
    return;
  }
  if (!/^https?:\/\//.test(remote)) throw refused(`Cannot build from ${JSON.stringify(remote)}: a git URL or the http(s) URL of a Dockerfile is expected`);
  const res = await fetch(remote).catch((err: Error) => {
    throw refused(`Error downloading ${remote}: ${err.message}`);
  });
  if (!res.ok || !res.body) throw refused(`Error downloading ${remote}: ${res.status} ${res.statusText}`);
  await pipeline(Readable.fromWeb(res.body as never), limited(maxBytes), fs.createWriteStream(path.join(dir, 'Dockerfile')));
}

/** A .dockerignore pattern as a regular expression over context-relative paths. */
function patternRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += pattern[i + 1] === '*' ? (i++, '.*') : '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, '^')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Removes what `.dockerignore` names (a path, or any of its parents, matching a pattern); never the Dockerfile or .dockerignore itself. */
export function applyDockerignore(dir: string): number {
  const file = path.join(dir, '.dockerignore');
  if (!fs.existsSync(file)) return 0;
  const patterns = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('!'))
    .map((l) => patternRegex(path.posix.normalize(l).replace(/^\/+/, '').replace(/\/+$/, '')));
  let removed = 0;
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel))) {
      const child = rel ? `${rel}/${name}` : name;
      if (child === 'Dockerfile' || child === '.dockerignore') continue;
      if (patterns.some((p) => p.test(child))) {
        fs.rmSync(path.join(dir, child), { recursive: true, force: true });
        removed++;
      } else if (fs.lstatSync(path.join(dir, child)).isDirectory()) walk(child);
    }
  };
  walk('');
  return removed;
}
