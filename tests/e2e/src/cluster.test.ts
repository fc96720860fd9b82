// A cluster on this machine (`./stevedore cluster up`): three nodes, each in a
// network namespace of its own, two API edges, through the real docker CLI:
// what `docker info` shows through either edge; an image imported through one
// edge running on every node, its layers fetched once per node; placement
// (spread 3/3/3, constraints, affinities, dependencies, Swarm's refusals);
// a container made through one edge driven through the other; names unique
// across nodes; a node's death noticed within 10 s while the API answers
// throughout, its return; and `cluster down` leaving nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { docker, killNode, nodeStatus, rawGet, restartCluster, startCluster, stopCluster, type Cluster } from './cluster-fixtures';
import { runCommand, sleep } from './harness';
import { busyboxRootfsTar } from './images-fixtures';

describe('a cluster on one machine (stevedore cluster up)', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(() => stopCluster(cluster));

  test('one DOCKER_HOST per edge; through either, docker info lists the three nodes, healthy, at their addresses', async () => {
    assert.equal(cluster.hosts.length, 2);
    for (const host of cluster.hosts) {
      assert.match(host, /^unix:\/\/.*\/edges\/edge-\d\/stevedore\.sock$/);
      assert.deepEqual(await nodeStatus(host), { 'node-1': 'Healthy', 'node-2': 'Healthy', 'node-3': 'Healthy' });
      const r = await docker(host, ['info', '--format', '{{json .DriverStatus}}']);
      const rows = JSON.parse(r.stdout) as Array<[string, string]>;
      assert.deepEqual(rows.slice(0, 3), [['\bStrategy', 'spread'], ['\bFilters', 'health, dependency, affinity, constraint'], ['\bNodes', '3']]);
      for (const n of cluster.layout.nodes) assert.deepEqual(rows.find(([k]) => k === n.name), [n.name, n.address]);
    }
    // Each node's services are in its own network namespace, reached at its own address.
    const n2 = cluster.layout.nodes[1];
    const state = JSON.parse(fs.readFileSync(path.join(n2.root, 'run', 'state.json'), 'utf8')) as { processes: Array<{ name: string; pid: number }> };
    const runtime = state.processes.find((p) => p.name === 'container-runtime')!;
    assert.notEqual(fs.readlinkSync(`/proc/${runtime.pid}/ns/net`), fs.readlinkSync('/proc/self/ns/net'));
  });

  test('an image imported through edge 1 runs on every node through edge 2; each node fetches its layer once', async () => {
    const [a, b] = cluster.hosts;
    const imported = await docker(a, ['import', busyboxRootfsTar(), 'busybox:latest']);
    assert.equal(imported.code, 0, imported.stderr);
    for (const n of cluster.layout.nodes) {
      const r = await docker(b, ['run', '--rm', '-e', `constraint:node==${n.name}`, 'busybox', 'sh', '-c', 'echo hello from $(hostname)']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^hello from [0-9a-f]{12}\n$/);
    }
    // Again: nothing fetched a second time.
    for (const n of cluster.layout.nodes) assert.equal((await docker(a, ['run', '--rm', '-e', `constraint:node==${n.name}`, 'busybox', 'true'])).code, 0);
    for (const n of cluster.layout.nodes) {
      const fetched = fs.readFileSync(path.join(n.root, 'logs', 'container-runtime.log'), 'utf8').split('\n').filter((l) => l.includes('layer fetched from the image store'));
      assert.equal(fetched.length, 1, `${n.name} fetched ${fetched.length} layers`);
      assert.equal(fs.readdirSync(path.join(n.root, 'layers')).filter((d) => /^[0-9a-f]{64}$/.test(d)).length, 1);
    }
  });

  test('spread places 9 containers 3/3/3; ps through either edge lists them as node/name; a container made through one edge is driven through the other', async () => {
    const [a, b] = cluster.hosts;
    for (let i = 1; i <= 9; i++) assert.equal((await docker(i % 2 ? a : b, ['run', '-d', '--name', `web${i}`, 'busybox', 'sleep', '300'])).code, 0);
    const ps = await docker(b, ['ps', '--format', '{{.Names}}']);
    const names = ps.stdout.trim().split('\n').sort();
    assert.equal(names.length, 9);
    const perNode = new Map<string, number>();
    for (const n of names) perNode.set(n.split('/')[0], (perNode.get(n.split('/')[0]) ?? 0) + 1);
    assert.deepEqual([...perNode.entries()].sort(), [['node-1', 3], ['node-2', 3], ['node-3', 3]]);
    assert.deepEqual((await docker(a, ['ps', '-q'])).stdout.trim().split('\n').length, 9);
    // Newest first across nodes, limit over the whole.
    assert.deepEqual((await docker(a, ['ps', '-n', '2', '--format', '{{.Names}}'])).stdout.trim().split('\n').map((n) => n.split('/')[1]), ['web9', 'web8']);

    // Inspect shows the node; logs, stop and rm through the other edge.
    const node = JSON.parse((await docker(b, ['inspect', '-f', '{{json .Node}}', 'web1'])).stdout);
    assert.deepEqual(Object.keys(node).sort(), ['Addr', 'Cpus', 'ID', 'IP', 'Labels', 'Memory', 'Name']);
    assert.equal(node.IP, cluster.layout.nodes.find((n) => n.name === node.Name)!.address);
    assert.equal((await docker(a, ['run', '-d', '--name', 'talker', 'busybox', 'sh', '-c', 'echo said-it; sleep 300'])).code, 0);
    for (let i = 0; i < 50 && !(await docker(b, ['logs', 'talker'])).stdout.includes('said-it'); i++) await sleep(100);
    assert.equal((await docker(b, ['logs', 'talker'])).stdout, 'said-it\n');
    assert.equal((await docker(b, ['stop', '-t', '1', 'talker'])).code, 0);
    assert.equal((await docker(a, ['inspect', '-f', '{{.State.Running}}', 'talker'])).stdout.trim(), 'false');
    assert.equal((await docker(b, ['rm', 'talker'])).code, 0);
    assert.match((await docker(a, ['inspect', 'talker'])).stderr, /No such (container|object): talker/);

    // since and before name a container on one node; the list spans them all.
    const listed = async (query: string) => JSON.parse(await rawGet(b, `/v1.12/containers/json?${query}`)).map((c: { Names: string[] }) => c.Names[0].split('/')[2]);
    assert.deepEqual(await listed('all=1&since=web6'), ['web9', 'web8', 'web7']);
    assert.deepEqual(await listed('all=1&before=web3'), ['web2', 'web1']);
    assert.deepEqual(await listed('all=1&before=web8&limit=2'), ['web7', 'web6']);

    // Attached through the other edge; a published port shows its node's address.
    assert.equal((await docker(a, ['run', '-d', '--name', 'ticker', '-p', '8080', 'busybox', 'sh', '-c', 'while true; do echo tick; sleep 0.2; done'])).code, 0);
    const attached = await docker(b, ['attach', '--no-stdin', 'ticker'], 1500);
    assert.match(attached.stdout, /tick\ntick\n/);
    const tickerNode = (await docker(a, ['inspect', '-f', '{{.Node.IP}}', 'ticker'])).stdout.trim();
    assert.match((await docker(b, ['port', 'ticker', '8080'])).stdout.trim(), new RegExp(`^${tickerNode.replace(/\./g, '\\.')}:\\d+$`));
    assert.equal((await docker(a, ['rm', '-f', 'ticker'])).code, 0);

    // Names are unique across the cluster.
    const dup = await docker(b, ['create', '--name', 'web1', '-e', `constraint:node!=${node.Name}`, 'busybox', 'true']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /Conflict, The name web1 is already assigned to [0-9a-f]{12}/);
    assert.equal((await docker(a, ['rm', '-f', ...Array.from({ length: 9 }, (_, i) => `web${i + 1}`)])).code, 0);
    assert.equal((await docker(b, ['ps', '-aq'])).stdout.trim(), '');
  });

  test('a build through one edge runs on a node, and its image runs on every node through the other; a commit likewise; tags and rmi racing on two edges never leave a tag on a deleted image', async () => {
    const [a, b] = cluster.hosts;
    const context = fs.mkdtempSync(path.join(cluster.root, 'ctx-'));
    fs.writeFileSync(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN echo built-here > /built\n');
    const built = await runCommand('docker', ['build', '--force-rm', '-t', 'built:1', context], { env: { ...process.env, DOCKER_HOST: a, DOCKER_BUILDKIT: '0' }, timeoutMs: 120_000 });
    assert.equal(built.code, 0, built.stderr);
    for (const n of cluster.layout.nodes) {
      const r = await docker(b, ['run', '--rm', '-e', `constraint:node==${n.name}`, 'built:1', 'cat', '/built']);
      assert.equal(r.stdout, 'built-here\n', `${n.name}: ${r.stderr}`);
    }
    assert.equal((await docker(a, ['ps', '-aq'])).stdout.trim(), '', '--force-rm left no container on any node');
    // A commit through one edge of a container on node-2: its image runs on node-3 through the other.
    assert.equal((await docker(a, ['run', '--name', 'tocommit', '-e', 'constraint:node==node-2', 'busybox', 'sh', '-c', 'echo committed > /mark'])).code, 0);
    assert.equal((await docker(b, ['commit', 'tocommit', 'committed:1'])).code, 0);
    assert.equal((await docker(b, ['run', '--rm', '-e', 'constraint:node==node-3', 'committed:1', 'cat', '/mark'])).stdout, 'committed\n');
    assert.equal((await docker(a, ['rm', 'tocommit'])).code, 0);
    assert.equal((await docker(a, ['rmi', 'committed:1'])).code, 0);
    const races = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        await docker(a, ['tag', 'built:1', `race:${i}`]);
        return Promise.all([docker(b, ['rmi', `race:${i}`]), docker(a, ['tag', 'busybox', `race:${i}`])]);
      }),
    );
    assert.equal(races.length, 10);
    const images = JSON.parse(await rawGet(b, '/v1.12/images/json')) as Array<{ Id: string; RepoTags: string[] }>;
    for (const tag of images.flatMap((i) => i.RepoTags).filter((t) => t.startsWith('race:'))) {
      assert.equal((await docker(a, ['inspect', '-f', '{{.Id}}', tag])).code, 0, `${tag} names an image that exists`);
    }
    assert.equal((await docker(b, ['rmi', 'built:1', ...images.flatMap((i) => i.RepoTags).filter((t) => t.startsWith('race:'))])).code, 0);
  });

  test('constraints, affinities and dependencies place a container, and an impossible one is refused with Swarm\'s words', async () => {
    const [a, b] = cluster.hosts;
    const nodeOf = async (name: string) => (await docker(b, ['inspect', '-f', '{{.Node.Name}}', name])).stdout.trim();
    assert.equal((await docker(a, ['run', '-d', '--name', 'anchor', '-e', 'constraint:node==node-2', 'busybox', 'sleep', '300'])).code, 0);
    assert.equal(await nodeOf('anchor'), 'node-2');
    assert.equal((await docker(a, ['inspect', '-f', '{{range .Config.Env}}{{.}} {{end}}', 'anchor'])).stdout.includes('constraint:'), false, 'the filter left the environment');
    assert.equal((await docker(b, ['run', '-d', '--name', 'near', '-e', 'affinity:container==anchor', 'busybox', 'sleep', '300'])).code, 0);
    assert.equal(await nodeOf('near'), 'node-2');
    assert.equal((await docker(b, ['run', '-d', '--name', 'linked', '--link', 'anchor:a', 'busybox', 'sleep', '300'])).code, 0);
    assert.equal(await nodeOf('linked'), 'node-2');
    assert.equal((await docker(a, ['run', '-d', '--name', 'away', '-e', 'affinity:container!=anchor', '-e', 'constraint:node!=node-1', 'busybox', 'sleep', '300'])).code, 0);
    assert.equal(await nodeOf('away'), 'node-3');
    const impossible = await docker(a, ['run', '-d', '-e', 'constraint:node==node-9', 'busybox', 'true']);
    assert.notEqual(impossible.code, 0);
    assert.match(impossible.stderr, /unable to find a node that satisfies node==node-9/);
    const split = await docker(a, ['create', '--link', 'anchor:a', '--volumes-from', 'away', 'busybox', 'true']);
    assert.match(split.stderr, /Unable to find a node fulfilling all dependencies: --link=anchor:a --volumes-from=away/);
    assert.equal((await docker(b, ['rm', '-f', 'anchor', 'near', 'linked', 'away'])).code, 0);
  });

  test('docker events --since shows every node\'s events in one order, each naming its node', async () => {
    const [a, b] = cluster.hosts;
    const since = Math.floor(Date.now() / 1000) - 1;
    for (const n of ['node-1', 'node-2', 'node-3']) assert.equal((await docker(a, ['run', '--rm', '--name', `ev-${n}`, '-e', `constraint:node==${n}`, 'busybox', 'true'])).code, 0);
    await sleep(1100);
    const r = await docker(b, ['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000)), '--format', '{{json .}}']);
    assert.equal(r.code, 0, r.stderr);
    // (`since` counts in seconds: earlier tests' events may come first.)
    const starts = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.status === 'start' && /^ev-/.test(e.Actor.Attributes.name));
    assert.deepEqual(starts.map((e) => e.Actor.Attributes['node.name']), ['node-1', 'node-2', 'node-3']);
    assert.deepEqual(starts.map((e) => e.from), ['busybox:latest node:node-1', 'busybox:latest node:node-2', 'busybox:latest node:node-3']);
    const times = starts.map((e) => Number(e.timeNano));
    assert.deepEqual(times, [...times].sort((x, y) => x - y));
  });

  test('every service serves Prometheus metrics on its address: API requests by route and status, gRPC calls, containers per node, layer bytes moved, heartbeats', async (t) => {
    const head = cluster.layout.nodes[0].address.replace(/\.\d+$/, '.1');
    const scrape = (host: string, port: number) =>
      new Promise<string>((resolve, reject) => {
        http.get({ host, port, path: '/metrics' }, (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${host}:${port} answered ${res.statusCode}`))));
        }).on('error', reject);
      });
    const value = (text: string, metric: string, labels: Record<string, string>) => {
      const line = text.split('\n').find((l) => (l.startsWith(`${metric}{`) || l.startsWith(`${metric} `)) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
      return line === undefined ? undefined : Number(line.split(' ').pop());
    };
    assert.equal((await docker(cluster.hosts[0], ['run', '-d', '--name', 'metered', '-e', 'constraint:node==node-1', 'busybox', 'sleep', '300'])).code, 0);
    t.after(() => docker(cluster.hosts[1], ['rm', '-f', 'metered']).then(() => undefined));
    assert.equal((await docker(cluster.hosts[0], ['inspect', 'metered'])).code, 0);
    const edge = await scrape(head, 9111);
    assert.ok(value(edge, 'stevedore_api_requests_total', { method: 'GET', route: '/containers/{id}/json', status: '200' })! >= 1);
    assert.ok(value(edge, 'stevedore_api_request_duration_seconds_count', { method: 'POST', route: '/containers/create' })! >= 1);
    assert.ok(value(edge, 'stevedore_grpc_client_handled_total', { method: '/stevedore.containers.v1.ContainerRuntime/Create', code: 'OK' })! >= 1);
    const node1 = await scrape(cluster.layout.nodes[0].address, 9103);
    assert.equal(value(node1, 'stevedore_containers', { node: 'node-1', state: 'running' }), 1);
    assert.ok(value(node1, 'stevedore_node_heartbeats_total', { node: 'node-1', outcome: 'sent' })! > 5);
    assert.ok(value(node1, 'stevedore_layer_bytes_fetched_total', { node: 'node-1' })! > 100_000, 'the busybox layer crossed to node-1');
    assert.ok(value(node1, 'stevedore_grpc_server_handled_total', { method: '/stevedore.containers.v1.ContainerRuntime/Start', code: 'OK' })! >= 1);
    const store = await scrape(head, 9102);
    assert.ok(value(store, 'stevedore_layer_blob_bytes_served_total', {})! > 300_000, 'a layer served to each of three nodes');
    for (const [host, port] of [[head, 9101], [cluster.layout.nodes[2].address, 9104], [head, 9112]] as const) assert.match(await scrape(host, port), /process_cpu_seconds_total/);
  });

  test('a node whose processes are killed is marked down within 10 s, the API answering throughout; back once it is up again', async () => {
    const n3 = cluster.layout.nodes[2];
    const [a, b] = cluster.hosts;
    // On node-3: one that goes on running while its node is away, one that exits meanwhile.
    assert.equal((await docker(a, ['run', '-d', '--name', 'on3', '-e', 'constraint:node==node-3', 'busybox', 'sleep', '300'])).code, 0);
    assert.equal((await docker(a, ['run', '-d', '--name', 'ends3', '-e', 'constraint:node==node-3', 'busybox', 'sh', '-c', 'sleep 4; exit 7'])).code, 0);
    let pings = 0;
    let failures = 0;
    let pinging = true;
    const pinger = (async () => {
      while (pinging) {
        const r = await docker(cluster.hosts[1], ['version', '--format', '{{.Server.Version}}'], 10_000);
        pings++;
        if (r.code !== 0) failures++;
      }
    })();
    const killedAt = Date.now();
    killNode(n3);
    let downAfterMs = -1;
    while (Date.now() - killedAt < 15_000) {
      if ((await nodeStatus(cluster.hosts[1]))['node-3'] === 'Unhealthy') {
        downAfterMs = Date.now() - killedAt;
        break;
      }
      await sleep(250);
    }
    pinging = false;
    await pinger;
    assert.ok(downAfterMs >= 0 && downAfterMs <= 10_000, `node-3 marked down after ${downAfterMs} ms`);
    assert.deepEqual(await nodeStatus(cluster.hosts[0]), { 'node-1': 'Healthy', 'node-2': 'Healthy', 'node-3': 'Unhealthy' });
    assert.ok(pings > 0 && failures === 0, `${failures} of ${pings} requests failed while the node was down`);

    // Its containers show the node's state; a request for one is refused at once, naming the node; new ones go elsewhere.
    const ps = (await docker(b, ['ps', '-a', '--format', '{{.Names}} {{.Status}}'])).stdout.trim().split('\n').sort();
    assert.deepEqual(ps, ['node-3/ends3 Host Down', 'node-3/on3 Host Down']);
    const asked = Date.now();
    const refused = await docker(a, ['inspect', 'on3']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Container on3 running on unhealthy node node-3/);
    assert.ok(Date.now() - asked < 5000, 'the refusal came at once');
    for (let i = 0; i < 3; i++) {
      const id = (await docker(b, ['run', '-d', 'busybox', 'sleep', '300'])).stdout.trim();
      assert.notEqual((await docker(a, ['inspect', '-f', '{{.Node.Name}}', id])).stdout.trim(), 'node-3');
      assert.equal((await docker(a, ['rm', '-f', id])).code, 0);
    }

    // `cluster up` again starts only what is not running: the node comes back.
    await restartCluster(cluster);
    const back = Date.now();
    while ((await nodeStatus(cluster.hosts[0]))['node-3'] !== 'Healthy' && Date.now() - back < 10_000) await sleep(250);
    assert.deepEqual(await nodeStatus(cluster.hosts[0]), { 'node-1': 'Healthy', 'node-2': 'Healthy', 'node-3': 'Healthy' });
    // Back, its containers are as they really are: one still running (adopted), one exited with its own code.
    assert.equal((await docker(b, ['inspect', '-f', '{{.State.Running}}', 'on3'])).stdout.trim(), 'true');
    assert.equal((await docker(b, ['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', 'ends3'])).stdout.trim(), 'false 7');
    assert.equal((await docker(a, ['rm', '-f', 'on3', 'ends3'])).code, 0);
  });

  test('a node whose link goes down is marked down within 10 s, and up again once its link is back', async () => {
    const n2 = cluster.layout.nodes[1];
    const veth = n2.veth;
    assert.equal((await runCommand('ip', ['link', 'set', veth, 'down'])).code, 0);
    const cut = Date.now();
    try {
      while ((await nodeStatus(cluster.hosts[0]))[n2.name] !== 'Unhealthy' && Date.now() - cut < 15_000) await sleep(250);
      assert.ok(Date.now() - cut <= 10_000, `marked down after ${Date.now() - cut} ms`);
    } finally {
      assert.equal((await runCommand('ip', ['link', 'set', veth, 'up'])).code, 0);
    }
    const back = Date.now();
    while ((await nodeStatus(cluster.hosts[0]))[n2.name] !== 'Healthy' && Date.now() - back < 20_000) await sleep(250);
    assert.equal((await nodeStatus(cluster.hosts[0]))[n2.name], 'Healthy');
  });

  test('an edge\'s death costs only the requests it was serving: the other edge serves the cluster meanwhile, and the edge is back', async () => {
    const edge1 = JSON.parse(fs.readFileSync(path.join(cluster.root, 'edges', 'edge-1', 'run', 'state.json'), 'utf8')) as { processes: Array<{ name: string; pid: number }> };
    const api = edge1.processes.find((p) => p.name === 'api-edge')!;
    process.kill(api.pid, 'SIGKILL');
    assert.equal((await docker(cluster.hosts[1], ['run', '--rm', 'busybox', 'echo', 'still here'])).stdout, 'still here\n');
    // The killed edge's supervisor starts it again; its socket held meanwhile.
    assert.equal((await docker(cluster.hosts[0], ['run', '--rm', 'busybox', 'echo', 'back'])).stdout, 'back\n');
  });
});
