import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeEtcFiles } from './container-files';

test('hostname, hosts and resolv.conf: the container\'s name at its address, its links, the DNS it was given', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etc-files-'));
  try {
    const id = 'abcdef0123456789'.padEnd(64, '0');
    const files = writeEtcFiles(dir, id, { Domainname: 'example.org' }, { Dns: ['10.0.0.2'], DnsSearch: ['corp'] }, '172.17.0.4', [{ alias: 'db', ipAddress: '172.17.0.3' }]);
    assert.equal(files.name, 'abcdef012345');
    assert.equal(fs.readFileSync(files.hostname, 'utf8'), 'abcdef012345\n');
    const hosts = fs.readFileSync(files.hosts, 'utf8').split('\n');
    assert.equal(hosts[0], '127.0.0.1\tlocalhost');
    assert.ok(hosts.includes('172.17.0.4\tabcdef012345.example.org abcdef012345'));
    assert.ok(hosts.includes('172.17.0.3\tdb'));
    const resolv = fs.readFileSync(files.resolvConf, 'utf8');
    assert.match(resolv, /^nameserver 10\.0\.0\.2$/m);
    assert.match(resolv, /^search corp$/m);
    assert.equal(fs.statSync(files.hosts).mode & 0o777, 0o644);

    // Off the bridge, with a Hostname of its own: 127.0.1.1 names it.
    const again = writeEtcFiles(dir, id, { Hostname: 'box' }, {});
    assert.equal(again.name, 'box');
    assert.ok(fs.readFileSync(again.hosts, 'utf8').includes('127.0.1.1\tbox\n'));
    assert.doesNotMatch(fs.readFileSync(again.resolvConf, 'utf8'), /nameserver\s+127\./);
    assert.match(fs.readFileSync(again.resolvConf, 'utf8'), /^\s*nameserver/m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
