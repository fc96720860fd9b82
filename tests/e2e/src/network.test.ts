// Bridge networking through the real docker CLI: an address on the stack's
// bridge, NetworkSettings in inspect, the host and other containers reach a
// container's server, outgoing NAT (one rule for the bridge, checked against
// a network of the test's own); and nothing left behind (veth, network
// namespace, NAT rule, address) after removal or a SIGKILL of the runtime.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { freePort, sleep, type Stack, startStackWithBusybox, stopStack } from './harness';
import * as net from 'node:net';

/** The stack's rules in the nat table's POSTROUTING: the bridge's outgoing NAT, and any made per container. */
function natRules(stack: Stack): string[] {
  const bridge = String(stack.env.STEVEDORE_BRIDGE);
  return execFileSync('iptables', ['-t', 'nat', '-S', 'POSTROUTING'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`stevedore-${bridge}`));
}

/** What the host holds for a stack's bridge: its veths, its namespaces, its NAT rules, its addresses. */
function footprint(stack: Stack): { veths: number; netns: number; nat: number; addresses: number; published: number } {
  const bridge = String(stack.env.STEVEDORE_BRIDGE);
  const veths = execFileSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
  const prefix = `sd${createHash('sha256').update(stack.root).digest('hex').slice(0, 6)}-`;
  const netns = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns').filter((n) => n.startsWith(prefix)).length : 0;
  const nat = natRules(stack).length;
  const ipam = path.join(stack.root, 'network', 'ipam', `stevedore-${bridge}`);
  const addresses = fs.existsSync(ipam) ? fs.readdirSync(ipam).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).length : 0;
  const published = execFileSync('iptables', ['-t', 'nat', '-S', 'CNI-HOSTPORT-DNAT'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`stevedore-${bridge}`)).length;
  return { veths, netns, nat, addresses, published };
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe('bridge networking', () => {
  let stack: Stack;
  let empty: ReturnType<typeof footprint>;
  before(async () => {
    stack = await startStackWithBusybox();
  });
  after(() => stopStack(stack, { allowRestarts: true }));

  test('a container gets an address on the bridge; the host and other containers reach it', async () => {
    const subnet = String(stack.env.STEVEDORE_BRIDGE_SUBNET).replace(/\.0\/24$/, '');
    const addr = await stack.docker(['run', '--rm', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0; ip route']);
    assert.equal(addr.code, 0, addr.stderr);
    assert.match(addr.stdout, new RegExp(`inet ${subnet.replace(/\./g, '\\.')}\\.\\d+/24`));
    assert.match(addr.stdout, new RegExp(`default via ${subnet.replace(/\./g, '\\.')}\\.1 dev eth0`));
    empty = footprint(stack);
    assert.deepEqual(empty, { veths: 0, netns: 0, nat: 1, addresses: 0, published: 0 }, 'a removed container leaves nothing; the bridge keeps its one NAT rule');
    const subnetCidr = String(stack.env.STEVEDORE_BRIDGE_SUBNET);
    assert.match(natRules(stack)[0], new RegExp(`^-A POSTROUTING -s ${subnetCidr.replace(/\./g, '\\.')} ! -o ${stack.env.STEVEDORE_BRIDGE} .*-j MASQUERADE$`));

    const server = (await stack.docker(['run', '-d', '--name', 'web', 'busybox', 'sh', '-c', 'mkdir /www; echo served > /www/index.html; exec httpd -f -p 80 -h /www'])).stdout.trim();
    const settings = JSON.parse((await stack.request('GET', '/v1.12/containers/web/json')).text).NetworkSettings;
    assert.equal(settings.Bridge, stack.env.STEVEDORE_BRIDGE);
    assert.equal(settings.Gateway, `${subnet}.1`);
    assert.equal(settings.IPPrefixLen, 24);
    assert.match(settings.IPAddress, new RegExp(`^${subnet.replace(/\./g, '\\.')}\\.\\d+$`));
    const old = JSON.parse((await stack.request('GET', '/v1.5/containers/web/json')).text).NetworkSettings;
    assert.equal(old.IPAddress, settings.IPAddress);

    let body = '';
    for (let i = 0; i < 20 && !body; i++) body = await get(`http://${settings.IPAddress}/index.html`).catch(() => sleep(100).then(() => ''));
    assert.equal(body, 'served\n');
    const fromPeer = await stack.docker(['run', '--rm', 'busybox', 'wget', '-q', '-O', '-', `http://${settings.IPAddress}/index.html`]);
    assert.equal(fromPeer.stdout, 'served\n', fromPeer.stderr);
    assert.deepEqual(footprint(stack), { veths: 1, netns: 1, nat: 1, addresses: 1, published: 0 }, 'no NAT rule of its own for a container');

    assert.equal((await stack.docker(['rm', '-f', server])).code, 0);
    assert.deepEqual(footprint(stack), empty);
    // After a stop the address is released too.
    const stopped = await stack.docker(['run', '--name', 'brief', 'busybox', 'true']);
    assert.equal(stopped.code, 0);
    assert.equal(JSON.parse((await stack.request('GET', '/v1.12/containers/brief/json')).text).NetworkSettings.IPAddress, '');
    assert.equal((await stack.docker(['rm', 'brief'])).code, 0);
    assert.deepEqual(footprint(stack), empty);
  });

  test('--net=none and NetworkDisabled get loopback only, and no address', async () => {
    const none = await stack.docker(['run', '--rm', '--net=none', 'busybox', 'ls', '/sys/class/net']);
    assert.equal(none.stdout.trim(), 'lo');
    const created = await stack.request('POST', '/v1.12/containers/create', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ Image: 'busybox', Cmd: ['sleep', '5'], NetworkDisabled: true }),
    });
    const id = JSON.parse(created.text).Id;
    assert.equal((await stack.request('POST', `/v1.12/containers/${id}/start`)).status, 204);
    assert.equal(JSON.parse((await stack.request('GET', `/v1.12/containers/${id}/json`)).text).NetworkSettings.IPAddress, '');
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
    assert.deepEqual(footprint(stack), empty);
    // An unknown mode is refused at start; `run --rm` ends (it waits for the `die`) and removes the container.
    const bogus = await stack.docker(['run', '--rm', '--name', 'bogus-net', '--net=bogus', 'busybox', 'true'], { timeoutMs: 30_000 });
    assert.notEqual(bogus.code, 0);
    assert.match(bogus.stderr, /Cannot start container [0-9a-f]{64}: invalid network mode bogus/);
    assert.equal((await stack.request('GET', '/v1.12/containers/bogus-net/json')).status, 404);
    assert.deepEqual(footprint(stack), empty);
  });

  test('outgoing traffic leaves with the host address (NAT), to a network the test made', async () => {
    // "Outside": a namespace of the test's own behind a veth pair, with a server that answers each
    // connection with the address it came from. Without NAT its answer has no way back to the container.
    const n = process.pid % 250;
    const ns = `sdout-${process.pid}`;
    const [hostIf, nsIf] = [`sdo${process.pid % 100000}h`, `sdo${process.pid % 100000}n`];
    const [hostAddr, outsideAddr] = [`10.252.${n}.1`, `10.252.${n}.2`];
    const sh = (args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
    sh(['netns', 'add', ns]);
    let server: ReturnType<typeof spawn> | undefined;
    try {
      sh(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
      sh(['link', 'set', nsIf, 'netns', ns]);
      sh(['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
      sh(['link', 'set', hostIf, 'up']);
      sh(['-n', ns, 'addr', 'add', `${outsideAddr}/30`, 'dev', nsIf]);
      sh(['-n', ns, 'link', 'set', nsIf, 'up']);
      server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', `require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(7777, '${outsideAddr}', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((resolve) => server!.stdout!.once('data', resolve));
      const seen = await stack.docker(['run', '--rm', 'busybox', 'sh', '-c', `nc -w 5 ${outsideAddr} 7777 </dev/null; ip -4 -o addr show eth0`]);
      assert.equal(seen.code, 0, seen.stderr);
      const [first, own] = seen.stdout.split('\n');
      assert.equal(first, hostAddr, 'the outside saw the host, not the container');
      assert.ok(!own.includes(`${hostAddr}/`), 'the container has an address of its own');
      assert.deepEqual(footprint(stack), empty);
    } finally {
      server?.kill();
      sh(['netns', 'delete', ns]); // takes the veth pair with it
    }
  });

  test('SIGKILL of container-runtime: a running container keeps its network, one that exits meanwhile leaves nothing', async () => {
    const keep = (await stack.docker(['run', '-d', '--name', 'keep', 'busybox', 'sh', '-c', 'mkdir /w; echo still > /w/index.html; exec httpd -f -p 80 -h /w'])).stdout.trim();
    const going = (await stack.docker(['run', '-d', '--name', 'going', 'busybox', 'sleep', '300'])).stdout.trim();
    const ip = JSON.parse((await stack.request('GET', `/v1.12/containers/${keep}/json`)).text).NetworkSettings.IPAddress;
    const goingPid = JSON.parse((await stack.request('GET', `/v1.12/containers/${going}/json`)).text).State.Pid;
    // Left from before (another subnet, the plugin's chain per container of earlier versions): the restarted runtime removes them.
    const bridge = String(stack.env.STEVEDORE_BRIDGE);
    const chain = `CNI-${process.pid.toString(16)}`;
    const nat = (args: string[]) => execFileSync('iptables', ['-w', '-t', 'nat', ...args]);
    nat(['-A', 'POSTROUTING', '-s', '10.99.0.0/24', '!', '-o', bridge, '-m', 'comment', '--comment', `stevedore-${bridge} outgoing NAT`, '-j', 'MASQUERADE']);
    nat(['-N', chain]);
    nat(['-A', chain, '-j', 'MASQUERADE']);
    nat(['-A', 'POSTROUTING', '-s', '10.99.0.7/32', '-m', 'comment', '--comment', `name: "stevedore-${bridge}" id: "old"`, '-j', chain]);
    assert.equal(natRules(stack).length, 3);
    const runtime = stack.process('container-runtime');
    process.kill(runtime.pid!, 'SIGKILL');
    process.kill(goingPid, 'SIGKILL'); // exits while nobody is watching
    await sleep(1500);
    await stack.waitFor('/containers/json', 200, 20_000);
    assert.equal((await stack.docker(['inspect', '-f', '{{.State.Running}}', 'going'])).stdout.trim(), 'false');
    assert.equal((await get(`http://${ip}/index.html`)), 'still\n');
    assert.deepEqual(footprint(stack), { veths: 1, netns: 1, nat: 1, addresses: 1, published: 0 }, 'only the running container is on the bridge, and the restarted runtime did not add a second NAT rule');
    assert.ok(!execFileSync('iptables', ['-w', '-t', 'nat', '-S'], { encoding: 'utf8' }).includes(chain), 'the old chain is gone');
    assert.equal((await stack.docker(['rm', '-f', keep, going])).code, 0);
    assert.deepEqual(footprint(stack), empty);
  });

  test('published ports: -p host:container, -p container, -P with --expose; docker port, the list per version, and a taken port', async () => {
    const hostPort = await freePort();
    const run = await stack.docker(['run', '-d', '--name', 'pub', '-p', `${hostPort}:80`, '-p', '81', '--expose', '82', '-P', 'busybox', 'sh', '-c', 'mkdir /w; echo via-port > /w/index.html; exec httpd -f -p 80 -h /w']);
    assert.equal(run.code, 0, run.stderr);
    const gateway = `${String(stack.env.STEVEDORE_BRIDGE_SUBNET).replace(/\.0\/24$/, '')}.1`;
    let body = '';
    for (let i = 0; i < 20 && !body; i++) body = await get(`http://127.0.0.1:${hostPort}/index.html`).catch(() => sleep(100).then(() => ''));
    assert.equal(body, 'via-port\n');
    assert.equal(await get(`http://${gateway}:${hostPort}/index.html`), 'via-port\n', "on the host's other addresses too");

    const port = await stack.docker(['port', 'pub']);
    const lines = port.stdout.trim().split('\n').sort();
    assert.equal(lines[0], `80/tcp -> 0.0.0.0:${hostPort}`);
    assert.match(lines[1], /^81\/tcp -> 0\.0\.0\.0:(49[1-9]\d\d|[5-6]\d{4})$/);
    assert.match(lines[2], /^82\/tcp -> 0\.0\.0\.0:\d+$/);
    const inspect = JSON.parse((await stack.request('GET', '/v1.12/containers/pub/json')).text).NetworkSettings.Ports;
    assert.deepEqual(inspect['80/tcp'], [{ HostIp: '0.0.0.0', HostPort: String(hostPort) }]);
    const list = JSON.parse((await stack.request('GET', '/v1.12/containers/json')).text).find((c: any) => c.Names[0] === '/pub');
    assert.deepEqual(list.Ports.find((p: any) => p.PrivatePort === 80), { IP: '0.0.0.0', PrivatePort: 80, PublicPort: hostPort, Type: 'tcp' });
    const legacy = JSON.parse((await stack.request('GET', '/v1.4/containers/json')).text).find((c: any) => c.Id.startsWith(run.stdout.trim().slice(0, 12)));
    assert.match(legacy.Ports, new RegExp(`0\\.0\\.0\\.0:${hostPort}->80/tcp`));
    assert.equal(footprint(stack).published, 1);

    // The same host port again, and a port some other program listens on: refused, nothing half-made.
    const before = footprint(stack);
    const again = await stack.docker(['run', '-d', '-p', `${hostPort}:80`, 'busybox', 'true']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, new RegExp(`Bind for 0\\.0\\.0\\.0:${hostPort} failed: port is already allocated`));
    const busyPort = await freePort();
    const other = net.createServer().listen(busyPort, '0.0.0.0');
    await new Promise((r) => other.once('listening', r));
    const taken = await stack.docker(['run', '-d', '-p', `${busyPort}:80`, 'busybox', 'true']);
    other.close();
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, /port is already allocated/);
    assert.deepEqual(footprint(stack), before);

    assert.equal((await stack.docker(['rm', '-f', 'pub'])).code, 0);
    const leftovers = (await stack.docker(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (leftovers.length) assert.equal((await stack.docker(['rm', '-f', ...leftovers])).code, 0);
    assert.deepEqual(footprint(stack), empty);
  });

  test('links: the alias in /etc/hosts and the environment Docker 1.0 gave; bad links refused', async () => {
    assert.equal((await stack.docker(['run', '-d', '--name', 'db', '-e', 'SECRET=s3', '-e', 'EQ=a=b', '--expose', '5432', 'busybox', 'sleep', '300'])).code, 0);
    const dbIp = JSON.parse((await stack.request('GET', '/v1.12/containers/db/json')).text).NetworkSettings.IPAddress;
    const app = await stack.docker(['run', '--rm', '--name', 'app', '--link', 'db:the-db', 'busybox', 'sh', '-c', 'env | grep ^THE_DB | sort; grep -w the-db /etc/hosts; ping -c 1 -W 2 the-db > /dev/null && echo reached'], { timeoutMs: 20_000 });
    assert.equal(app.code, 0, app.stderr);
    assert.deepEqual(app.stdout.trim().split('\n'), [
      'THE_DB_ENV_SECRET=s3',
      'THE_DB_NAME=/app/the-db',
      `THE_DB_PORT=tcp://${dbIp}:5432`,
      `THE_DB_PORT_5432_TCP=tcp://${dbIp}:5432`,
      `THE_DB_PORT_5432_TCP_ADDR=${dbIp}`,
      'THE_DB_PORT_5432_TCP_PORT=5432',
      'THE_DB_PORT_5432_TCP_PROTO=tcp',
      `${dbIp}\tthe-db`,
      'reached',
    ]);
    const unknown = await stack.docker(['run', '--rm', '--link', 'nosuch:x', 'busybox', 'true'], { timeoutMs: 20_000 });
    assert.equal(unknown.code, 125);
    assert.match(unknown.stderr, /Could not get container for nosuch/);
    assert.equal((await stack.docker(['stop', '-t', '0', 'db'])).code, 0);
    const stopped = await stack.docker(['run', '--rm', '--link', 'db:x', 'busybox', 'true'], { timeoutMs: 20_000 });
    assert.equal(stopped.code, 125);
    assert.match(stopped.stderr, /Cannot link to a non running container: \/db AS \/[a-z_]+\/x/);
    assert.equal((await stack.docker(['rm', 'db'])).code, 0);
    assert.equal((await stack.docker(['ps', '-aq'])).stdout, '', 'the refused --rm containers are gone too');
    assert.deepEqual(footprint(stack), empty);
  });

  test('a link names the linked container /parent/alias; rm --link removes that name only', async () => {
    assert.equal((await stack.docker(['run', '-d', '--name', 'store', 'busybox', 'sleep', '300'])).code, 0);
    assert.equal((await stack.docker(['run', '-d', '--name', 'front', '--link', 'store:db', 'busybox', 'sleep', '300'])).code, 0);
    const names = async () => Object.fromEntries((JSON.parse((await stack.request('GET', '/v1.12/containers/json')).text) as Array<{ Names: string[] }>).map((c) => [c.Names[0], c.Names]));
    assert.deepEqual((await names())['/store'], ['/store', '/front/db']);
    assert.ok((await stack.docker(['ps', '--no-trunc', '--format', '{{.Names}}'])).stdout.split('\n').includes('store,front/db'), 'docker ps --no-trunc shows the link name');
    const primary = await stack.request('DELETE', '/v1.12/containers/store?link=1');
    assert.equal(primary.status, 409);
    assert.equal(primary.text, 'Conflict, cannot remove the default name of the container\n');
    const missing = await stack.request('DELETE', '/v1.12/containers/front/nothing?link=1');
    assert.equal(missing.status, 404);
    assert.equal(missing.text, 'No such link: /front/nothing\n');
    assert.equal((await stack.request('DELETE', '/v1.12/containers/front/db')).status, 404, 'without link=1 a path with a slash names no container');
    const removed = await stack.docker(['rm', '--link', '/front/db']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual((await names())['/store'], ['/store']);
    assert.equal((await stack.docker(['inspect', '-f', '{{.State.Running}}', 'front', 'store'])).stdout.trim(), 'true\ntrue', 'both still run');
    assert.equal((await stack.docker(['rm', '-f', 'front', 'store'])).code, 0);
  });

  test('--net=container:NAME joins the network of another running container', async () => {
    assert.equal((await stack.docker(['run', '-d', '--name', 'host-of-net', 'busybox', 'sh', '-c', 'mkdir /w; echo shared > /w/index.html; exec httpd -f -p 8080 -h /w'])).code, 0);
    const ip = JSON.parse((await stack.request('GET', '/v1.12/containers/host-of-net/json')).text).NetworkSettings.IPAddress;
    let joined = { code: 1, stdout: '', stderr: '' };
    for (let i = 0; i < 10 && joined.stdout !== `shared\n${ip}\n`; i++) {
      joined = await stack.docker(['run', '--rm', '--net=container:host-of-net', 'busybox', 'sh', '-c', 'wget -q -O - http://127.0.0.1:8080/index.html; ip -4 -o addr show eth0 | sed -e "s/.*inet //" -e "s/\\/.*//"']);
    }
    assert.equal(joined.stdout, `shared\n${ip}\n`, joined.stderr);
    const unknown = await stack.docker(['run', '--rm', '--net=container:nosuch', 'busybox', 'true'], { timeoutMs: 20_000 });
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /No such container: nosuch/);
    assert.equal((await stack.docker(['stop', '-t', '0', 'host-of-net'])).code, 0);
    const stopped = await stack.docker(['run', '--rm', '--net=container:host-of-net', 'busybox', 'true'], { timeoutMs: 20_000 });
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /cannot join network of a non running container: \/host-of-net/);
    assert.equal((await stack.docker(['rm', 'host-of-net'])).code, 0);
    assert.equal((await stack.docker(['ps', '-aq'])).stdout, '');
    assert.deepEqual(footprint(stack), empty);
  });
});

describe('STEVEDORE_ICC=false: only links pass between containers', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox({ STEVEDORE_ICC: 'false' });
  });
  after(() => stopStack(stack, { allowRestarts: true }));

  /** The rules of the stack's chain that links opened. */
  const linkRules = (): string[] =>
    execFileSync('iptables', ['-S', `SD-ICC-${stack.env.STEVEDORE_BRIDGE}`], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('ACCEPT'));

  test('a container reaches another only through a link, and only its exposed ports; the rules go with the container', async () => {
    const serve = 'mkdir /w; echo open > /w/index.html; httpd -p 8081 -h /w; exec httpd -f -p 80 -h /w';
    assert.equal((await stack.docker(['run', '-d', '--name', 'web', '--expose', '80', 'busybox', 'sh', '-c', serve])).code, 0);
    const ip = JSON.parse((await stack.request('GET', '/v1.12/containers/web/json')).text).NetworkSettings.IPAddress;
    assert.equal(await get(`http://${ip}/index.html`), 'open\n', 'the host still reaches the container');

    const stranger = await stack.docker(['run', '--rm', 'busybox', 'sh', '-c', `timeout 3 wget -q -O - http://${ip}/index.html || echo blocked`], { timeoutMs: 20_000 });
    assert.equal(stranger.stdout, 'blocked\n', stranger.stderr);

    const linked = await stack.docker(['run', '--rm', '--link', 'web:web', 'busybox', 'sh', '-c', 'timeout 3 wget -q -O - http://web/index.html; timeout 3 wget -q -O - http://web:8081/index.html || echo closed'], { timeoutMs: 20_000 });
    assert.equal(linked.stdout, 'open\nclosed\n', linked.stderr);
    assert.deepEqual(linkRules(), [], 'the link closed with its container');

    // Rules of a linking container that exits while the runtime is away go at its start-up.
    const going = (await stack.docker(['run', '-d', '--link', 'web:web', 'busybox', 'sleep', '300'])).stdout.trim();
    assert.equal(linkRules().length, 2, 'a link opens one port each way');
    const goingPid = JSON.parse((await stack.request('GET', `/v1.12/containers/${going}/json`)).text).State.Pid;
    process.kill(stack.process('container-runtime').pid!, 'SIGKILL');
    process.kill(goingPid, 'SIGKILL');
    await sleep(1500);
    await stack.waitFor('/containers/json', 200, 20_000);
    assert.deepEqual(linkRules(), []);
    const still = await stack.docker(['run', '--rm', 'busybox', 'sh', '-c', `timeout 3 wget -q -O - http://${ip}/index.html || echo blocked`], { timeoutMs: 20_000 });
    assert.equal(still.stdout, 'blocked\n', 'the chain survived the restart');
    assert.equal((await stack.docker(['rm', '-f', 'web', going])).code, 0);
  });
});
