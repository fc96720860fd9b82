// Setuid, setgid and file capabilities through the paths of the API that
// extract an archive or make a layer: import, load (both layouts), pull,
// commit, save and build. Each image's files keep their modes, group and
// capability inside a container and in the layer a save gives back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
// Also installs the byte-exact PAX codec for SCHILY.xattr records into tar-stream (file capabilities are binary).
import { hostXattr } from '@stevedore/archive';
import { busyboxRootfsTar, tarBuffer } from './images-fixtures';
import { shortTempDir, sleep, startRegistry, startStackWithBusybox, stopStack, type Stack } from './harness';
import { legacyArchive, manifestArchive, pushImage, savedLayer } from './crafted-images';

describe('setuid, setgid and file capabilities survive every path', () => {
  let stack: Stack;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let scratch: string;
  let busybox: Buffer;
  /** A busybox root with /bin/hp-suid (4755), /bin/hp-sgid (2755, group 5) and /bin/hp-cap (cap_net_raw+ep, set with setcap). */
  let rootfsTar: Buffer;
  /** The three files alone (and bin/), for a layer on busybox. */
  let filesTar: Buffer;
  let cap: Buffer;
  const STAT = '/bin/hp-suid 4755 0:0\n/bin/hp-sgid 2755 0:5\n/bin/hp-cap 755 0:0\n';

  before(async () => {
    [stack, registry] = await Promise.all([startStackWithBusybox(), startRegistry()]);
    scratch = shortTempDir('hpx-');
    busybox = fs.readFileSync(busyboxRootfsTar());
    const root = path.join(scratch, 'modes');
    fs.mkdirSync(root);
    execFileSync('tar', ['-C', root, '-xf', busyboxRootfsTar()]);
    const bin = (f: string) => path.join(root, 'bin', f);
    fs.writeFileSync(bin('hp-suid'), '#!/bin/sh\necho setuid\n');
    fs.chmodSync(bin('hp-suid'), 0o4755);
    fs.writeFileSync(bin('hp-sgid'), '#!/bin/sh\necho setgid\n');
    fs.chownSync(bin('hp-sgid'), 0, 5);
    fs.chmodSync(bin('hp-sgid'), 0o2755);
    fs.writeFileSync(bin('hp-cap'), '#!/bin/sh\necho capable\n');
    fs.chmodSync(bin('hp-cap'), 0o755);
    execFileSync('setcap', ['cap_net_raw+ep', bin('hp-cap')]);
    cap = hostXattr(bin('hp-cap'), 'security.capability')!;
    assert.ok(cap && cap.length >= 20, 'setcap wrote a file capability');
    // GNU tar writes the capability as the PAX record SCHILY.xattr.security.capability, as Docker's archives carry it.
    const pack = (...what: string[]) => execFileSync('tar', ['--format=posix', '--xattrs', '--xattrs-include=security.capability', '--numeric-owner', '-C', root, '-cf', '-', ...what], { maxBuffer: 64 * 1024 * 1024 });
    rootfsTar = pack('.');
    filesTar = pack('./bin/hp-suid', './bin/hp-sgid', './bin/hp-cap');
  });

  after(async () => {
    await Promise.all([stopStack(stack), registry?.stop()]);
    if (scratch) execFileSync('rm', ['-rf', scratch]);
  });

  /** Modes as `stat` shows them inside a container of the image, and the capability through its root filesystem. */
  async function modesIn(image: string): Promise<{ stat: string; cap: Buffer | null }> {
    const run = await stack.docker(['run', '-d', image, 'sh', '-c', 'stat -c "%n %a %u:%g" /bin/hp-suid /bin/hp-sgid /bin/hp-cap; exec sleep 600']);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    try {
      let stat = '';
      for (let i = 0; i < 100 && stat.split('\n').length < 4; i++) {
        stat = (await stack.docker(['logs', id])).stdout;
        if (stat.split('\n').length < 4) await sleep(50);
      }
      return { stat, cap: hostXattr(path.join(stack.root, 'containers', id, 'rootfs', 'bin', 'hp-cap'), 'security.capability') };
    } finally {
      await stack.docker(['rm', '-f', id]);
    }
  }

  /** The image's own layer as saved: the three files' header modes, owners and capability record. */
  async function savedModes(id: string): Promise<string[]> {
    const items = await savedLayer(stack, id);
    const problems: string[] = [];
    const want: Array<[string, number, number]> = [['bin/hp-suid', 0o4755, 0], ['bin/hp-sgid', 0o2755, 5], ['bin/hp-cap', 0o755, 0]];
    for (const [name, mode, gid] of want) {
      const e = items.get(name);
      if (!e) problems.push(`${name}: not in the saved layer`);
      else if ((e.mode & 0o7777) !== mode || e.gid !== gid) problems.push(`${name}: saved as ${(e.mode & 0o7777).toString(8)} ${e.uid}:${e.gid}, not ${mode.toString(8)} 0:${gid}`);
    }
    const record = items.get('bin/hp-cap')?.pax['SCHILY.xattr.security.capability'];
    if (record === undefined || !Buffer.from(record, 'latin1').equals(cap)) problems.push(`bin/hp-cap: saved capability ${record === undefined ? 'missing' : Buffer.from(record, 'latin1').toString('hex')}, not ${cap.toString('hex')}`);
    return problems;
  }

  async function assertKept(image: string, options: { stat?: string; capability?: boolean; saved?: boolean } = {}): Promise<void> {
    const id = JSON.parse((await stack.request('GET', `/v1.12/images/${image}/json`)).text).Id as string;
    const seen = await modesIn(image);
    assert.equal(seen.stat, options.stat ?? STAT, `${image}: modes inside a container`);
    if (options.capability !== false) assert.deepEqual(seen.cap?.toString('hex'), cap.toString('hex'), `${image}: the file capability, byte for byte`);
    if (options.saved !== false) assert.deepEqual(await savedModes(id), [], `${image}: its saved layer`);
  }

  test('import', async () => {
    const r = await stack.request('POST', '/v1.12/images/create?fromSrc=-&repo=hp-modes&tag=import', { body: rootfsTar });
    assert.equal(r.status, 200, r.text);
    await assertKept('hp-modes:import');
  });

  test('load, both layouts', async () => {
    const legacy = legacyArchive('hp-modes-legacy', 0, filesTar, busybox);
    assert.equal((await stack.request('POST', '/v1.12/images/load', { body: await legacy.archive })).status, 200);
    await assertKept('hp-modes-legacy:c0');
    const modern = manifestArchive('hp-modes-manifest', 0, rootfsTar, null);
    assert.equal((await stack.request('POST', '/v1.12/images/load', { body: await modern.archive })).status, 200);
    await assertKept('hp-modes-manifest:c0');
  });

  test('pull', async () => {
    await pushImage(registry.address, 'hp/modes', 'v1', [busybox, filesTar], 'modes');
    const pulled = await stack.docker(['pull', `${registry.address}/hp/modes:v1`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    await assertKept(`${registry.address}/hp/modes:v1`);
  });

  test('commit of a container that touched the files (their copies in its layer), and save of that', async () => {
    const run = await stack.docker(['run', '--name', 'hp-toucher', 'hp-modes:import', 'touch', '/bin/hp-suid', '/bin/hp-sgid', '/bin/hp-cap']);
    assert.equal(run.code, 0, run.stderr);
    const diff = (await stack.docker(['diff', 'hp-toucher'])).stdout;
    assert.match(diff, /^C \/bin\/hp-suid$/m, 'the files are the container\'s own now');
    const committed = await stack.docker(['commit', 'hp-toucher', 'hp-modes:commit']);
    assert.equal(committed.code, 0, committed.stderr);
    assert.equal((await stack.docker(['rm', 'hp-toucher'])).code, 0);
    await assertKept('hp-modes:commit');
  });

  test('build: ADD of a tar holding the files, and RUN chmod 4755 / 2755', async () => {
    const context = (files: Record<string, Buffer | string>) => tarBuffer(new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])));
    const add = await stack.request('POST', '/v1.12/build?t=hp-modes:add', { body: await context({ Dockerfile: 'FROM busybox\nADD modes.tar /\n', 'modes.tar': filesTar }) });
    assert.match(add.text, /Successfully built/, add.text);
    // What ADD puts in is root's (Docker 1.0's builder): the group goes, the bits stay.
    await assertKept('hp-modes:add', { stat: STAT.replace('2755 0:5', '2755 0:0'), saved: false });
    const addId = JSON.parse((await stack.request('GET', '/v1.12/images/hp-modes:add/json')).text).Id as string;
    const items = await savedLayer(stack, addId);
    assert.deepEqual(['bin/hp-suid', 'bin/hp-sgid', 'bin/hp-cap'].map((n) => (items.get(n)!.mode & 0o7777).toString(8)), ['4755', '2755', '755']);
    assert.equal(Buffer.from(items.get('bin/hp-cap')!.pax['SCHILY.xattr.security.capability'] ?? '', 'latin1').toString('hex'), cap.toString('hex'));

    const dockerfile = 'FROM busybox\nRUN echo "#!/bin/sh" > /bin/hp-suid && echo x > /bin/hp-sgid && echo y > /bin/hp-cap && chgrp 5 /bin/hp-sgid && chmod 4755 /bin/hp-suid && chmod 2755 /bin/hp-sgid && chmod 755 /bin/hp-cap\n';
    const chmod = await stack.request('POST', '/v1.12/build?t=hp-modes:run', { body: await context({ Dockerfile: dockerfile }) });
    assert.match(chmod.text, /Successfully built/, chmod.text);
    await assertKept('hp-modes:run', { capability: false, saved: false });
    const runItems = await savedLayer(stack, JSON.parse((await stack.request('GET', '/v1.12/images/hp-modes:run/json')).text).Id);
    assert.deepEqual(['bin/hp-suid', 'bin/hp-sgid'].map((n) => `${(runItems.get(n)!.mode & 0o7777).toString(8)} ${runItems.get(n)!.gid}`), ['4755 0', '2755 5']);
  });
});
