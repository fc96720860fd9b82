// The build farm across a cluster (`./stevedore cluster up`: three nodes, two
// edges), through the real docker CLI: a build placed by its constraints on a
// node without its base image, its result run on every node; the same
// Dockerfile through the other edge on another node, all cache; a build
// handed to the node that holds its base image; two builds sharing three
// steps run them once; a node killed under a build: the build goes on
// elsewhere and, once the node is back, none of its containers is left; a
// client that goes away; bad requests; the farm's metrics.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { context } from './build-fixtures';
import { docker, killNode, nodeStatus, restartCluster, startCluster, stopCluster, type Cluster } from './cluster-fixtures';
import { shortTempDir, sleep } from './harness';
import { busyboxRootfsTar } from './images-fixtures';

describe('the build farm across a cluster', () => {
  let cluster: Cluster;
  let a: string;
  let b: string;
  before(async () => {
    cluster = await startCluster();
    [a, b] = cluster.hosts;
    assert.equal((await docker(a, ['import', busyboxRootfsTar(), 'busybox:latest'])).code, 0);
    // node-1 runs a container of busybox: it holds its layers, the other nodes do not.
    assert.equal((await docker(a, ['run', '--rm', '-e', 'constraint:node==node-1', 'busybox', 'true'])).code, 0);
  });
  after(() => stopCluster(cluster));

  const build = (host: string, args: string[], files: Record<string, string>, timeoutMs = 120_000) =>
    docker(host, ['build', ...args, context(files)], timeoutMs).then((r) => ({ ...r, image: /Successfully built ([0-9a-f]{12})/.exec(r.stdout)?.[1] ?? '' }));

  /** The nodes whose build worker built `image` (from their logs). */
  const builtOn = (image: string) =>
    cluster.layout.nodes
      .filter((n) => fs.readFileSync(path.join(n.root, 'logs', 'build-worker.log'), 'utf8').split('\n').some((l) => l.includes('"msg":"built"') && l.includes(`"image":"${image}`)))
      .map((n) => n.name);

  const layersFetched = (node: Cluster['layout']['nodes'][number]) =>
    fs.readFileSync(path.join(node.root, 'logs', 'container-runtime.log'), 'utf8').split('\n').filter((l) => l.includes('layer fetched from the image store')).length;

  /** The build workers' metrics, every node's. */
  const metricsText = async () => (await Promise.all(cluster.layout.nodes.map(async (n) => (await fetch(`http://${n.address}:9104/metrics`)).text()))).join('\n');
  const sum = (text: string, pattern: RegExp) => text.split('\n').filter((l) => pattern.test(l)).reduce((total, l) => total + Number(l.split(' ').pop()), 0);

  /** Every container of the cluster whose name begins with build_, as ps -a lists them through `host`. */
  const buildContainers = async (host: string) => (await docker(host, ['ps', '-a', '--format', '{{.Names}}'])).stdout.split('\n').filter((n) => /(^|\/)build_/.test(n));

  test('a build through edge 1 runs on a node without its base image and its result runs on all three; the same build through edge 2 on another node is all cache', async () => {
    const token = randomBytes(4).toString('hex');
    const files = { Dockerfile: `FROM busybox\nRUN echo ${token} > /token\nADD data.txt /data.txt\nENV MARK ${token}\nCMD ["cat", "/token", "/data.txt"]\n`, 'data.txt': 'carried\n' };
    const n2 = cluster.layout.nodes[1];
    const before2 = layersFetched(n2);
    const first = await build(a, ['-t', 'farm/first', '--build-arg', 'constraint:node==node-2'], files);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.equal((first.stdout.match(/Running in/g) ?? []).length, 3, first.stdout);
    assert.deepEqual(builtOn(first.image), ['node-2']);
    assert.ok(layersFetched(n2) > before2, "node-2 fetched FROM's layer to build");
    for (const n of cluster.layout.nodes) {
      const r = await docker(b, ['run', '--rm', '-e', `constraint:node==${n.name}`, 'farm/first']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${token}\ncarried\n`, `the image runs on ${n.name}`);
    }
    const again = await build(b, ['-t', 'farm/again', '--build-arg', 'constraint:node==node-3'], files);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((again.stdout.match(/Using cache/g) ?? []).length, 4, again.stdout);
    assert.equal((again.stdout.match(/Running in/g) ?? []).length, 0);
    assert.equal(again.image, first.image);

    // --no-cache refreshes the entry for every node; two such builds at once both make a valid image, and the cache answers with one.
    const twins = await Promise.all(['node-1', 'node-3'].map((n) => build(n === 'node-1' ? a : b, ['--no-cache', '--build-arg', `constraint:node==${n}`], files)));
    for (const t of twins) assert.equal(t.code, 0, t.stderr);
    assert.notEqual(twins[0].image, twins[1].image);
    const after = await build(a, ['--build-arg', 'constraint:node==node-2'], files);
    assert.equal((after.stdout.match(/Using cache/g) ?? []).length, 4, after.stdout);
    assert.ok(twins.some((t) => t.image === after.image), 'the newest entry is one of the two');
    assert.notEqual(after.image, first.image);
    for (const t of twins) assert.equal((await docker(b, ['run', '--rm', '-e', 'constraint:node==node-2', t.image])).stdout, `${token}\ncarried\n`);
  });

  test("a build without constraints goes to the node that holds its base image's layers", async () => {
    // An image only node-3 has used.
    const dir = shortTempDir('base2-');
    const tar = path.join(dir, 'base2.tar');
    fs.copyFileSync(busyboxRootfsTar(), tar);
    fs.mkdirSync(path.join(dir, 'etc'));
    fs.writeFileSync(path.join(dir, 'etc', 'base2'), 'base two\n');
    execFileSync('tar', ['-C', dir, '-rf', tar, './etc/base2']);
    assert.equal((await docker(a, ['import', tar, 'farm/base2'])).code, 0);
    assert.equal((await docker(a, ['run', '--rm', '-e', 'constraint:node==node-3', 'farm/base2', 'true'])).code, 0);
    for (let i = 0; i < 3; i++) {
      const r = await build(i % 2 ? a : b, [], { Dockerfile: `FROM farm/base2\nRUN echo ${randomBytes(4).toString('hex')} > /x\n` });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(builtOn(r.image), ['node-3'], `build ${i + 1}`);
    }
  });

  test('two builds sharing three steps, started together on two nodes, run those steps once', async () => {
    const token = randomBytes(4).toString('hex');
    const shared = `FROM busybox\nRUN sleep 2; echo ${token} > /one\nRUN echo two > /two\nRUN echo three > /three\n`;
    const [x, y] = await Promise.all([
      build(a, ['-t', 'farm/x', '--build-arg', 'constraint:node==node-1'], { Dockerfile: `${shared}RUN echo x > /own\n` }),
      build(b, ['-t', 'farm/y', '--build-arg', 'constraint:node==node-2'], { Dockerfile: `${shared}RUN echo y > /own\n` }),
    ]);
    assert.equal(x.code, 0, x.stderr);
    assert.equal(y.code, 0, y.stderr);
    const ran = (r: { stdout: string }) => (r.stdout.match(/Running in/g) ?? []).length;
    assert.equal(ran(x) + ran(y), 3 + 2, `the shared steps ran once, each own step once:\n${x.stdout}\n${y.stdout}`);
    assert.match(x.stdout + y.stdout, /Waiting for another build that is building this same step/);
    assert.ok(sum(await metricsText(), /^stevedore_build_shared_step_waits_total\{/) >= 1, 'the wait counted');
    assert.deepEqual(builtOn(x.image), ['node-1']);
    assert.deepEqual(builtOn(y.image), ['node-2']);
    for (const [image, own] of [['farm/x', 'x'], ['farm/y', 'y']]) {
      assert.equal((await docker(a, ['run', '--rm', image, 'cat', '/one', '/two', '/three', '/own'])).stdout, `${token}\ntwo\nthree\n${own}\n`);
    }
  });

  test('kill -9 of the node running a build: the client sees it start again elsewhere and finish; once the node is back no build_ container is left', async () => {
    const token = randomBytes(4).toString('hex');
    // Queued on the own queue of node-2 or node-3 (its constraint): that queue's node dies, the others' sweep queues it again.
    // Its context is larger than what goes through Redis (1 MiB): its rest, in the image store's blob store, is read again by the second run.
    const big = randomBytes(3 * 1024 * 1024).toString('base64');
    const running = build(a, ['--build-arg', 'constraint:node!=node-1'], { Dockerfile: `FROM busybox\nADD big.txt /big.txt\nRUN echo ${token}; sleep 30\nCMD ["true"]\n`, 'big.txt': big }, 180_000);
    let names: string[] = [];
    for (let i = 0; i < 100 && !names.length; i++) {
      names = (await docker(b, ['ps', '--format', '{{.Names}}'])).stdout.split('\n').filter((n) => /\/build_/.test(n));
      if (!names.length) await sleep(200);
    }
    assert.equal(names.length, 1, 'the RUN container runs');
    const nodeName = names[0].split('/')[0];
    const node = cluster.layout.nodes.find((n) => n.name === nodeName)!;
    killNode(node);
    const r = await running;
    try {
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, new RegExp(`The node ${nodeName} running this build stopped: the build starts again from its first step on node node-\\d`));
      assert.equal((r.stdout.match(/Step 0 : FROM busybox/g) ?? []).length, 2);
      assert.deepEqual(builtOn(r.image), [nodeName === 'node-2' ? 'node-3' : 'node-2'], 'built on the other node its constraint allows');
      assert.equal((await docker(b, ['run', '--rm', r.image, 'wc', '-c', '/big.txt'])).stdout.trim(), `${big.length} /big.txt`);
      // Down, its container shows as such; back, it is removed whatever rm said.
      assert.deepEqual(await buildContainers(b), [names[0]]);
    } finally {
      await restartCluster(cluster);
    }
    const back = Date.now();
    while ((await nodeStatus(a))[nodeName] !== 'Healthy' && Date.now() - back < 20_000) await sleep(250);
    while ((await buildContainers(a)).length && Date.now() - back < 30_000) await sleep(500);
    assert.deepEqual(await buildContainers(a), []);
    assert.deepEqual(await buildContainers(b), []);
  });

  test('a client that goes away cancels its build on whichever node runs it', async () => {
    const dir = context({ Dockerfile: `FROM busybox\nRUN echo ${randomBytes(4).toString('hex')}; sleep 60\n` });
    const client = spawn('docker', ['build', dir], { env: { ...process.env, DOCKER_HOST: b, DOCKER_BUILDKIT: '0', DOCKER_CONFIG: path.join(b.slice('unix://'.length), '..', 'cli') }, stdio: 'ignore' });
    for (let i = 0; i < 100 && !(await buildContainers(a)).length; i++) await sleep(200);
    assert.equal((await buildContainers(a)).length, 1);
    client.kill('SIGKILL');
    const gone = Date.now();
    while ((await buildContainers(a)).length && Date.now() - gone < 15_000) await sleep(250);
    assert.deepEqual(await buildContainers(a), []);
  });

  test("refused: constraints no node meets, an invalid one, FROM an image that exists nowhere (Docker 1.0's message, at once)", async () => {
    const files = { Dockerfile: 'FROM busybox\nRUN true\n' };
    const none = await build(a, ['--build-arg', 'constraint:gpu==yes'], files);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /unable to find a node that runs builds and satisfies gpu==yes/);
    const bad = await build(a, ['--build-arg', 'constraint:node=~x'], files);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid filter/);
    const t0 = Date.now();
    const missing = await build(b, [], { Dockerfile: 'FROM nosuch/image\nRUN true\n' });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr + missing.stdout, /nosuch\/image|No such image|not found|registry/i);
    assert.ok(Date.now() - t0 < 15_000, 'it failed at once');
    assert.deepEqual(await buildContainers(a), []);
  });

  test('metrics: queue depth, builds running, durations, cache hits and misses, failovers, shared-step waits', async () => {
    const text = await metricsText();
    assert.match(text, /^stevedore_build_queue_depth \d+$/m);
    assert.match(text, /^stevedore_builds_running\{node="node-1"\} \d+$/m);
    // A node killed in the test before started its counts again: those of the others are enough.
    assert.ok(sum(text, /^stevedore_build_duration_seconds_count\{/) >= 4, 'builds timed');
    assert.ok(sum(text, /^stevedore_build_step_duration_seconds_count\{.*instruction="RUN"/) >= 2, 'steps timed by instruction');
    assert.ok(sum(text, /^stevedore_build_cache_total\{.*result="hit"/) >= 2, 'cache hits counted');
    assert.ok(sum(text, /^stevedore_build_cache_total\{.*result="miss"/) >= 2, 'cache misses counted');
    assert.ok(sum(text, /^stevedore_build_failovers_total\{/) >= 1, 'the failover counted');
  });
});
