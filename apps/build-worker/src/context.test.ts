import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { BuildContext } from './context';

type Entry = { name: string; type?: tar.Header['type']; body?: string; linkname?: string; mode?: number };

function tarOf(entries: Entry[]): Readable {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644) } as tar.Header, e.body ?? '');
  pack.finalize();
  return pack as unknown as Readable;
}

async function contextOf(entries: Entry[]): Promise<{ context: BuildContext; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'context-test-'));
  test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { context: await BuildContext.fromTar(tarOf(entries), dir), dir };
}

const FILES: Entry[] = [
  { name: './Dockerfile', body: 'FROM busybox\n' },
  { name: './app/main.sh', body: 'echo hi\n', mode: 0o755 },
  { name: './app/lib/util.sh', body: 'true\n' },
  { name: './a.conf', body: 'a' },
  { name: './b.conf', body: 'b' },
  { name: './rel-link', type: 'symlink', linkname: 'app/main.sh' },
  { name: './abs-link', type: 'symlink', linkname: '/etc/passwd' },
  { name: './up-link', type: 'symlink', linkname: '../../etc' },
  { name: './hard', type: 'link', linkname: 'a.conf' },
];

test('the index holds every entry (missing parents made), the data file every content, nothing else is written', async () => {
  const { context, dir } = await contextOf(FILES);
  assert.deepEqual(fs.readdirSync(dir), ['context.data']);
  assert.equal(fs.statSync(path.join(dir, 'context.data')).size, 'FROM busybox\necho hi\ntrue\nab'.length);
  assert.deepEqual(
    context.list().map((e) => `${e.name}:${e.type}`),
    ['', 'Dockerfile', 'a.conf', 'abs-link', 'app', 'app/lib', 'app/lib/util.sh', 'app/main.sh', 'b.conf', 'hard', 'rel-link', 'up-link'].map((n) =>
      `${n}:${['', 'app', 'app/lib'].includes(n) ? 'directory' : n.endsWith('link') ? 'symlink' : 'file'}`,
    ),
  );
  assert.equal(context.dockerfile(), 'FROM busybox\n');
  assert.equal(context.read(context.resolve('hard', 'hard')).toString(), 'a', 'a hard link has its target content');
  assert.equal(context.resolve('app/main.sh', 'x').mode, 0o755);
});

test('sources follow links inside the context and refuse what leaves it', async () => {
  const { context } = await contextOf(FILES);
  assert.equal(context.sources('rel-link')[0].name, 'app/main.sh');
  assert.equal(context.sources('/app/../a.conf')[0].name, 'a.conf');
  assert.deepEqual(context.sources('*.conf').map((e) => e.name), ['a.conf', 'b.conf']);
  assert.deepEqual(context.sources('app/*').map((e) => e.name), ['app/lib', 'app/main.sh']);
  assert.equal(context.sources('.')[0].name, '');
  assert.throws(() => context.sources('abs-link'), /Forbidden path outside the build context: abs-link \(\/etc\/passwd\)/);
  assert.throws(() => context.sources('up-link/passwd'), /Forbidden path outside the build context: up-link\/passwd/);
  assert.throws(() => context.sources('../x'), /Forbidden path outside the build context: \.\.\/x/);
  assert.throws(() => context.sources('missing'), /missing: no such file or directory/);
  assert.throws(() => context.sources('*.none'), /\*\.none: no such file or directory/);
  assert.throws(() => context.sources('a.conf/x'), /not a directory/);
});

test('the cache checksum follows paths, modes and contents, not times', async () => {
  const base = await contextOf(FILES);
  const same = await contextOf(FILES.map((e) => ({ ...e })));
  const content = await contextOf(FILES.map((e) => (e.name === './app/lib/util.sh' ? { ...e, body: 'false\n' } : e)));
  const mode = await contextOf(FILES.map((e) => (e.name === './app/lib/util.sh' ? { ...e, mode: 0o600 } : e)));
  const sum = (c: BuildContext, p: string) => c.checksum(c.resolve(p, p));
  assert.equal(sum(base.context, 'app'), sum(same.context, 'app'));
  assert.notEqual(sum(base.context, 'app'), sum(content.context, 'app'));
  assert.notEqual(sum(base.context, 'app'), sum(mode.context, 'app'));
  assert.equal(sum(base.context, 'a.conf'), sum(content.context, 'a.conf'), 'a file elsewhere does not matter');
});

test('.dockerignore removes what it names, never the Dockerfile or itself', async () => {
  const { context } = await contextOf([...FILES, { name: '.dockerignore', body: '*.conf\napp/lib\n# comment\nDockerfile\n' }]);
  assert.equal(context.applyDockerignore(), 4);
  assert.deepEqual(context.list().map((e) => e.name).filter((n) => !n.endsWith('link')), ['', '.dockerignore', 'Dockerfile', 'app', 'app/main.sh', 'hard']);
});

test('entries that climb out, or sit below a link, are refused', async () => {
  await assert.rejects(contextOf([{ name: '../escape', body: 'x' }]), /points outside/);
  await assert.rejects(contextOf([{ name: 'l', type: 'symlink', linkname: '/tmp' }, { name: 'l/x', body: 'x' }]), /below a non-directory/);
  await assert.rejects(contextOf([{ name: 'h', type: 'link', linkname: 'nothing' }]), /hard link/);
});
