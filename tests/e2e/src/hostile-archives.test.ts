// The crafted-archive corpus against the extraction itself (every API path
// that extracts calls it; hostile-paths.test.ts feeds the same corpus
// through the API): nothing outside the target changes, each archive gets
// the outcome written beside it, and a refused archive names its entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '@stevedore/archive';
import { hostileCorpus, hostileTar, makeCanary, snapshotTree } from './hostile-archives';

test('no crafted archive changes anything outside the directory it is extracted into', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-'));
  const canary = path.join(work, 'canary');
  makeCanary(canary);
  const before = snapshotTree(canary);
  const corpus = hostileCorpus(canary);
  assert.ok(corpus.length >= 30, `at least 30 crafted archives (${corpus.length})`);
  try {
    for (const [i, c] of corpus.entries()) {
      for (const mode of ['layer', 'copy into a directory'] as const) {
        const target = path.join(work, `t${i}-${mode === 'layer' ? 'l' : 'c'}`);
        fs.mkdirSync(path.join(target, 'dest'), { recursive: true });
        const archive = await hostileTar(c);
        const dest = mode === 'layer' ? path.join(target, 'dest') : target;
        const options = mode === 'layer' ? {} : { under: 'dest' };
        let outcome: 'refused' | 'confined' = 'confined';
        try {
          await applyLayer(Readable.from([archive]), dest, options);
        } catch (err) {
          outcome = 'refused';
          assert.equal((err as { kind?: string }).kind, 'refused', `${c.name} (${mode}): a refusal, not a fault: ${(err as Error).message}`);
          assert.match((err as Error).message, /entry|archive/i, `${c.name}: the message says what was wrong`);
        }
        assert.equal(outcome, mode === 'layer' ? c.expect : (c.expectCopy ?? c.expect), `${c.name} (${mode})`);
        assert.deepEqual(snapshotTree(canary), before, `${c.name} (${mode}): the canary is untouched`);
        // Nothing of a layer lands beside it either.
        if (mode === 'layer') assert.deepEqual(fs.readdirSync(target), ['dest'], `${c.name}: nothing beside the layer`);
      }
    }
  } finally {
    // rm(1): a refused 4096-byte name left 2,047 nested directories, deeper than a recursive rmSync goes.
    execFileSync('rm', ['-rf', work]);
  }
});

test('file modes, owners and capabilities survive extraction: setuid after chown', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modes-'));
  try {
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_raw, effective
    const archive = await hostileTar({
      name: 'modes',
      expect: 'confined',
      entries: [
        { name: 'bin/', type: 'directory', mode: 0o755 },
        { name: 'bin/ping', mode: 0o4755, uid: 0, gid: 0, body: 'x', pax: { 'SCHILY.xattr.security.capability': cap.toString('latin1') } },
        { name: 'bin/wall', mode: 0o2755, uid: 0, gid: 5, body: 'x' },
        { name: 'tmp/', type: 'directory', mode: 0o1777 },
        { name: 'home/', type: 'directory', mode: 0o755 },
        { name: 'home/u/', type: 'directory', mode: 0o2750, uid: 1000, gid: 1000 },
        { name: 'home/u/l', type: 'symlink', linkname: '/etc/passwd', uid: 1000, gid: 1000 },
        { name: 'dev-null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
        { name: 'trusted', body: 'x', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } },
      ],
    });
    await applyLayer(Readable.from([archive]), work);
    const st = (p: string) => fs.lstatSync(path.join(work, p));
    assert.equal(st('bin/ping').mode & 0o7777, 0o4755);
    assert.equal(st('bin/wall').mode & 0o7777, 0o2755);
    assert.equal(st('bin/wall').gid, 5);
    assert.equal(st('tmp').mode & 0o7777, 0o1777);
    assert.equal(st('home/u').mode & 0o7777, 0o2750);
    assert.equal(st('home/u').uid, 1000);
    assert.equal(st('home/u/l').uid, 1000, 'a link has its own owner');
    assert.ok(st('dev-null').isCharacterDevice());
    assert.equal(st('dev-null').rdev, fs.statSync('/dev/null').rdev);
    const { hostXattr } = await import('@stevedore/archive');
    assert.deepEqual(hostXattr(path.join(work, 'bin/ping'), 'security.capability'), cap, 'the file capability, byte for byte');
    assert.equal(hostXattr(path.join(work, 'trusted'), 'trusted.overlay.redirect'), null, 'overlayfs attributes from an archive are not applied');
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
