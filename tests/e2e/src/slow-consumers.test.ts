// Consumers of a container that do not keep up: attach clients that stop
// reading its output, a container-runtime that stops reading the monitor,
// and stdin pushed to a container that never reads it. The container, its
// log, `logs -f` and the other attach clients go on at their pace; the stuck
// consumer is dropped; the monitor, container-runtime and the API edge stay
// within bounded memory; the daemon keeps answering.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import WebSocket from 'ws';
import { processesMentioning, rssKiB, sleep, type Stack, startStackWithBusybox, stopStack } from './harness';

const MiB = 1024 * 1024;
/** The monitor's line for a relay it dropped for taking nothing for a second. */
const DROPPED = /dropped an attach client: it took none of its output for CLIENT_STUCK_MS/;

/** Bytes received so far on a stream, read at two moments to give a rate. */
class Received {
  bytes = 0;
  text = '';
  constructor(private readonly keepText = false) {}
  add(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.keepText) this.text += chunk.toString('latin1');
  }
}

/** Bytes per second received by each counter over `ms`. */
async function ratesOver(ms: number, counters: Received[]): Promise<number[]> {
  const start = counters.map((c) => c.bytes);
  const t0 = Date.now();
  await sleep(ms);
  const seconds = (Date.now() - t0) / 1000;
  return counters.map((c, i) => (c.bytes - start[i]) / seconds);
}

describe('slow consumers', () => {
  let stack: Stack;
  before(async () => {
    // Smaller bounds than the defaults (16 MiB in memory, 256 MiB spooled), so that a stuck client at about 1 MB/s is cut off in seconds.
    stack = await startStackWithBusybox({ STEVEDORE_ATTACH_BACKLOG: String(2 * MiB), STEVEDORE_ATTACH_SPOOL: String(6 * MiB) });
  });
  after(() => stopStack(stack));

  const monitorPid = (id: string): number => {
    const found = processesMentioning(id).filter((p) => p.cmd.includes('stevedore-shim'));
    assert.equal(found.length, 1, `one monitor for ${id}: ${JSON.stringify(found)}`);
    return found[0].pid;
  };

  /** A raw attach (Upgrade: tcp) whose socket is returned once the request is sent. */
  const attach = async (id: string, query: string): Promise<net.Socket> => {
    const sock = net.connect(stack.socket);
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    sock.write(`POST /v1.12/containers/${id}/attach?${query} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n`);
    return sock;
  };

  /** GET logs?follow=1, counted as it arrives. */
  const followLogs = (id: string, into: Received): http.ClientRequest => {
    const req = http.request({ socketPath: stack.socket, method: 'GET', path: `/v1.12/containers/${id}/logs?follow=1&stdout=1&stderr=1`, agent: false }, (res) => res.on('data', (c: Buffer) => into.add(c)));
    req.on('error', () => undefined);
    req.end();
    return req;
  };

  test('an attach client that stops reading is dropped; logs -f and another attach keep their pace; memory stays bounded', async () => {
    // Lines of about 1 KiB, at about 1 MB/s: the pace is the container's own.
    const script = 'p=x; for k in 1 2 3 4 5 6 7 8 9 10; do p=$p$p; done; i=0; while :; do i=$((i+1)); echo "$i $p"; if [ $((i % 20)) = 0 ]; then usleep 20000; fi; done';
    const id = (await stack.docker(['run', '-d', 'busybox', 'sh', '-c', script])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const processes = { monitor: monitorPid(id), runtime: Number(stack.process('container-runtime').pid), edge: Number(stack.process('api-edge').pid) };

    const logs = new Received();
    const follower = followLogs(id, logs);
    const reader = new Received();
    const reading = await attach(id, 'stream=1&stdout=1&stderr=1');
    reading.on('data', (c: Buffer) => reader.add(c));
    await sleep(1500); // past the replay of the log so far

    const [logsBefore, readerBefore] = await ratesOver(3000, [logs, reader]);
    assert.ok(logsBefore > 200_000 && readerBefore > 200_000, `the container's pace without a stuck client: logs ${logsBefore} B/s, attach ${readerBefore} B/s`);
    const rssBefore = Object.fromEntries(Object.entries(processes).map(([k, pid]) => [k, rssKiB(pid)])) as Record<keyof typeof processes, number>;

    // Clients that never read what they asked for: a raw attach and a WebSocket one.
    const stuck = await attach(id, 'stream=1&stdout=1&stderr=1');
    stuck.pause();
    const stuckWs = new WebSocket(`ws+unix://${stack.socket}:/v1.12/containers/${id}/attach/ws?stream=1&stdout=1`, { origin: 'http://localhost' });
    stuckWs.on('error', () => undefined);
    await new Promise((r) => stuckWs.once('open', r));
    stuckWs.pause();
    const stuckSince = Date.now();
    // Never reading, they learn that the engine closed their connection from a write that fails
    // (a byte of stdin the attach did not ask for, a ping): the end itself waits behind unread output.
    let stuckClosedAt = 0;
    let wsClosedAt = 0;
    stuck.once('close', () => (stuckClosedAt = Date.now()));
    stuckWs.once('close', () => (wsClosedAt = Date.now()));
    const peak = { ...rssBefore };
    const sampling = setInterval(() => {
      for (const [k, pid] of Object.entries(processes) as Array<[keyof typeof processes, number]>) peak[k] = Math.max(peak[k], rssKiB(pid));
      if (!stuck.destroyed) stuck.write('.');
      if (stuckWs.readyState === WebSocket.OPEN) stuckWs.ping();
    }, 250);
    let logsDuring: number;
    let readerDuring: number;
    try {
      // Past the time every buffer between the container and the stuck client takes to fill.
      await sleep(5000);
      [logsDuring, readerDuring] = await ratesOver(8000, [logs, reader]);
    } finally {
      clearInterval(sampling);
    }
    const after = (t: number) => (t ? `${((t - stuckSince) / 1000).toFixed(1)} s` : 'never');
    const report = `logs -f ${Math.round(logsBefore)} -> ${Math.round(logsDuring)} B/s, reading attach ${Math.round(readerBefore)} -> ${Math.round(readerDuring)} B/s; stuck clients closed after ${after(stuckClosedAt)} (raw), ${after(wsClosedAt)} (WebSocket); RSS KiB before ${JSON.stringify(rssBefore)}, peak ${JSON.stringify(peak)}`;
    assert.ok(logsDuring >= logsBefore / 2, `logs -f slowed down by the stuck client: ${report}`);
    assert.ok(readerDuring >= readerBefore / 2, `the reading attach slowed down by the stuck client: ${report}`);
    assert.ok(peak.monitor < 12 * 1024, `the monitor grew: ${report}`);
    assert.ok(peak.runtime - rssBefore.runtime < 48 * 1024, `container-runtime grew: ${report}`);
    assert.ok(peak.edge - rssBefore.edge < 48 * 1024, `the API edge grew: ${report}`);

    // Cut off: nothing more is queued for them (the edge logs it), and a minute later, having taken nothing, they are closed.
    const edgeLog = () => fs.readFileSync(`${stack.root}/logs/api-edge.log`, 'utf8');
    assert.equal(edgeLog().split('\n').filter((l) => l.includes('attach client cut off')).length, 2, `both stuck clients cut off: ${report}`);
    for (let i = 0; i < 80 && !(stuckClosedAt && wsClosedAt); i++) {
      if (!stuck.destroyed) stuck.write('.');
      if (stuckWs.readyState === WebSocket.OPEN) stuckWs.ping();
      await sleep(1000);
    }
    assert.ok(stuckClosedAt && stuckClosedAt - stuckSince < 80_000, `the engine closed the stuck raw attach: ${after(stuckClosedAt)}`);
    assert.ok(wsClosedAt && wsClosedAt - stuckSince < 80_000, `the engine closed the stuck WebSocket attach: ${after(wsClosedAt)}`);
    // The reading client is still served.
    const [readerAfter] = await ratesOver(1000, [reader]);
    assert.ok(readerAfter > 0, 'the reading attach still receives');

    process.stderr.write(`# slow attach client: ${report}\n`);
    reading.destroy();
    follower.destroy();
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
  });

  test('a client that reads slower than the container gets all of its output, from a spool, without holding up the container or a fast client', async () => {
    // Within the bounds of this stack: 2 MiB in memory, 6 MiB spooled.
    const total = 6 * MiB;
    const id = (await stack.docker(['create', 'busybox', 'sh', '-c', `head -c ${total} /dev/zero | tr "\\0" a`])).stdout.trim();
    const slow = await attach(id, 'stream=1&stdout=1');
    const fast = await attach(id, 'stream=1&stdout=1');
    const slowChunks: Buffer[] = [];
    const fastChunks: Buffer[] = [];
    // About 1.3 MB/s: a chunk, then 50 ms without reading.
    slow.on('data', (c: Buffer) => {
      slowChunks.push(c);
      slow.pause();
      setTimeout(() => slow.resume(), 50);
    });
    fast.on('data', (c: Buffer) => fastChunks.push(c));
    const slowEnded = new Promise<number>((r) => slow.once('close', () => r(Date.now())));
    const fastEnded = new Promise<number>((r) => fast.once('close', () => r(Date.now())));
    await sleep(300);
    const started = Date.now();
    assert.equal((await stack.docker(['start', id])).code, 0);
    assert.equal((await stack.docker(['wait', id])).stdout.trim(), '0');
    const exitedAfter = Date.now() - started;
    const [fastAt, slowAt] = await Promise.all([fastEnded, slowEnded]);
    /** The bytes of the frames after the answer's head. */
    const payload = (chunks: Buffer[]): string => {
      const all = Buffer.concat(chunks);
      const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
      let out = '';
      for (let i = 0; i + 8 <= body.length; i += 8 + body.readUInt32BE(i + 4)) out += body.subarray(i + 8, i + 8 + body.readUInt32BE(i + 4)).toString('latin1');
      return out;
    };
    const report = `container exited after ${exitedAfter} ms, fast client done after ${fastAt - started} ms, slow after ${slowAt - started} ms`;
    // Every byte, to both.
    assert.equal(payload(fastChunks), 'a'.repeat(total), report);
    assert.equal(payload(slowChunks), 'a'.repeat(total), report);
    assert.ok(exitedAfter < 4000 && fastAt - started < 5000, `held up by the slow client: ${report}`);
    assert.ok(slowAt - fastAt > 2000, `the slow client was not slow: ${report}`);
    const edgeLog = fs.readFileSync(`${stack.root}/logs/api-edge.log`, 'utf8');
    assert.equal(edgeLog.split('\n').filter((l) => l.includes('attach client cut off') && l.includes(id.slice(0, 12))).length, 0);
    assert.equal((await stack.docker(['rm', id])).code, 0);
    // Nothing is left of its spool.
    assert.deepEqual(fs.readdirSync(`${stack.root}/run/attach-spools`), []);
  });

  test('with container-runtime frozen, the monitor goes on for the container, its log and an attach reading it directly, and drops the attachment relayed through the runtime', async () => {
    const script = 'p=x; for k in 1 2 3 4 5 6 7 8 9 10; do p=$p$p; done; i=0; while :; do i=$((i+1)); echo "$i $p"; if [ $((i % 20)) = 0 ]; then usleep 20000; fi; done';
    // With stdin open: an attachment that takes stdin goes through the runtime; one that takes only output is read by the edge from the monitor.
    const id = (await stack.docker(['run', '-d', '-i', 'busybox', 'sh', '-c', script])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const monitor = monitorPid(id);
    const args = fs.readFileSync(`/proc/${monitor}/cmdline`, 'utf8').split('\0');
    const logFile = args[args.indexOf('--log') + 1];
    const stateDir = args[args.indexOf('--state') + 1];
    /** The counter of the container's last line in its log. */
    const lastLine = (): number => {
      const fd = fs.openSync(logFile, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(Math.min(size, 8192));
        fs.readSync(fd, buf, 0, buf.length, size - buf.length);
        const lines = buf.toString('utf8').split('\n').filter((l) => l.startsWith('{') && l.endsWith('}'));
        return parseInt((JSON.parse(lines[lines.length - 1]) as { log: string }).log, 10);
      } finally {
        fs.closeSync(fd);
      }
    };
    const linesPerSecond = async (ms: number): Promise<number> => {
      const from = lastLine();
      const t0 = Date.now();
      await sleep(ms);
      return (lastLine() - from) / ((Date.now() - t0) / 1000);
    };

    const reading = await attach(id, 'stream=1&stdout=1&stdin=1');
    const received = new Received();
    reading.on('data', (c: Buffer) => received.add(c));
    const closed = new Promise<void>((r) => reading.once('close', () => r()));
    const direct = await attach(id, 'stream=1&stdout=1');
    const directReceived = new Received();
    direct.on('data', (c: Buffer) => directReceived.add(c));
    await sleep(1500);
    const before = await linesPerSecond(2000);
    const directBefore = directReceived.bytes;

    const runtime = Number(stack.process('container-runtime').pid);
    let peak = rssKiB(monitor);
    let during: number;
    let directDuring = 0;
    let shimLog = '';
    let frozenFor = 0;
    process.kill(runtime, 'SIGSTOP');
    const frozenAt = Date.now();
    const sampling = setInterval(() => (peak = Math.max(peak, rssKiB(monitor))), 250);
    try {
      during = await linesPerSecond(10_000);
      directDuring = directReceived.bytes - directBefore;
      // The relay is dropped once the socket's buffer (the kernel's, 8 MiB) and the backlog bound (4 MiB) are full and a second has
      // passed: about 12 MiB of output, which a slow machine's container may not have written in 10 s.
      for (let waited = 0; waited < 30_000 && !DROPPED.test(shimLog); waited += 250) {
        shimLog = fs.readFileSync(`${stateDir}/shim.log`, 'utf8');
        if (!DROPPED.test(shimLog)) await sleep(250);
      }
      frozenFor = Date.now() - frozenAt;
    } finally {
      clearInterval(sampling);
      process.kill(runtime, 'SIGCONT');
    }
    const report = `log ${Math.round(before)} -> ${Math.round(during)} lines/s with container-runtime frozen; monitor peak RSS ${peak} KiB; the direct attach got ${directDuring} bytes in the first 10 s; frozen ${frozenFor} ms until the relay was dropped`;
    process.stderr.write(`# frozen container-runtime: ${report}\n`);
    assert.ok(before > 200, `the container's pace: ${report}`);
    assert.ok(during >= before / 2, `the container and its log slowed down: ${report}`);
    assert.ok(peak < 12 * 1024, `the monitor grew: ${report}`);
    // The attach reading the monitor itself did not notice: about as many bytes as the log got (a line is about 1 KiB).
    assert.ok(directDuring > during * 10 * 1000 * 0.5, `the direct attach was held up: ${report}`);
    assert.ok(!direct.destroyed, 'the direct attach goes on');
    direct.destroy();
    // Held for at most a second (a relay that takes nothing for that long is dropped), then the container goes on.
    assert.match(shimLog, DROPPED);
    // Thawed, the runtime reads what the monitor had sent before it dropped the attachment, then its end.
    const ended = await Promise.race([closed.then(() => true), sleep(10_000).then(() => false)]);
    assert.ok(ended, 'the dropped attachment ended for its client');
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
  });

  test('stdin pushed to a container that never reads it holds the writer back; output, logs and the daemon go on; memory stays bounded', async () => {
    // Reads no stdin; prints a tick every 0.1 s.
    const id = (await stack.docker(['run', '-d', '-i', 'busybox', 'sh', '-c', 'while :; do echo tick; usleep 100000; done'])).stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const processes = { monitor: monitorPid(id), runtime: Number(stack.process('container-runtime').pid), edge: Number(stack.process('api-edge').pid) };
    const rssBefore = Object.fromEntries(Object.entries(processes).map(([k, pid]) => [k, rssKiB(pid)])) as Record<keyof typeof processes, number>;
    const peak = { ...rssBefore };

    const logs = new Received(true);
    const follower = followLogs(id, logs);
    const writer = await attach(id, 'stream=1&stdin=1&stdout=1&stderr=1');
    const output = new Received(true);
    writer.on('data', (c: Buffer) => output.add(c));

    const chunk = Buffer.alloc(MiB, 'z');
    const total = 512 * MiB;
    let offered = 0;
    let psAnswered = 0;
    let psSlowest = 0;
    const deadline = Date.now() + 20_000;
    const pushing = (async () => {
      // Never more than 8 MiB queued on the client side: the rest is what the engine took.
      while (offered < total && Date.now() < deadline && !writer.destroyed) {
        if (writer.writableLength > 8 * MiB) {
          await sleep(20);
          continue;
        }
        writer.write(chunk);
        offered += chunk.length;
      }
    })();
    const sampling = setInterval(() => {
      for (const [k, pid] of Object.entries(processes) as Array<[keyof typeof processes, number]>) peak[k] = Math.max(peak[k], rssKiB(pid));
    }, 250);
    try {
      await sleep(4000);
      const ticksBefore = (logs.text.match(/tick/g) ?? []).length;
      const outputBefore = (output.text.match(/tick/g) ?? []).length;
      while (Date.now() < deadline - 1000) {
        const t0 = Date.now();
        const ps = await stack.docker(['ps', '-q'], { timeoutMs: 15_000 });
        assert.equal(ps.code, 0, `docker ps while stdin is pushed: ${ps.stderr}`);
        assert.ok(ps.stdout.includes(id.slice(0, 12)));
        psSlowest = Math.max(psSlowest, Date.now() - t0);
        psAnswered++;
        await sleep(500);
      }
      await pushing;
      const ticks = (logs.text.match(/tick/g) ?? []).length - ticksBefore;
      const outputTicks = (output.text.match(/tick/g) ?? []).length - outputBefore;
      const taken = offered - writer.writableLength;
      const report = `engine took ${(taken / MiB).toFixed(1)} MiB of ${(offered / MiB).toFixed(0)} MiB offered; ${ticks} ticks in the log and ${outputTicks} on the attach meanwhile; docker ps answered ${psAnswered} times, slowest ${psSlowest} ms; RSS KiB before ${JSON.stringify(rssBefore)}, peak ${JSON.stringify(peak)}`;
      process.stderr.write(`# stdin nobody reads: ${report}\n`);
      assert.ok(taken < 64 * MiB, `the engine took stdin nobody reads: ${report}`);
      assert.ok(ticks >= 50, `the container's log stalled: ${report}`);
      assert.ok(outputTicks >= 50, `the writer's own output stalled: ${report}`);
      assert.ok(psSlowest < 5000, `docker ps was slow: ${report}`);
      assert.ok(peak.monitor < 12 * 1024, `the monitor grew: ${report}`);
      assert.ok(peak.runtime - rssBefore.runtime < 48 * 1024, `container-runtime grew: ${report}`);
      assert.ok(peak.edge - rssBefore.edge < 48 * 1024, `the API edge grew: ${report}`);
    } finally {
      clearInterval(sampling);
      writer.destroy();
      follower.destroy();
    }
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
  });

  test('a client slower than the container, within the bound, gets every byte; one that falls past it gets what was queued and a notice', async () => {
    // 1.6 MB of base64, made as fast as the container can, read at about 0.5 MB/s: it lags, within the bound.
    const id = (await stack.docker(['create', 'busybox', 'sh', '-c', 'head -c 1200000 /dev/urandom | base64; echo the-end'])).stdout.trim();
    // The raw stream of a container without a tty is multiplexed: strip the 8-byte headers.
    const demux = (all: Buffer): { stdout: string; stderr: string } => {
      let stdout = '';
      let stderr = '';
      const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
      for (let i = 0; i + 8 <= body.length; ) {
        const len = body.readUInt32BE(i + 4);
        const text = body.subarray(i + 8, i + 8 + len).toString('latin1');
        if (body[i] === 2) stderr += text;
        else stdout += text;
        i += 8 + len;
      }
      return { stdout, stderr };
    };
    /** Everything the server sends, read at `bytesPerSecond`. */
    const readAll = (sock: net.Socket, bytesPerSecond: number): Promise<Buffer> =>
      new Promise((resolve) => {
        const chunks: Buffer[] = [];
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          resolve(Buffer.concat(chunks));
        };
        sock.once('end', finish);
        sock.once('close', finish);
        const step = (): void => {
          const c = sock.read() as Buffer | null;
          if (c) {
            chunks.push(c);
            setTimeout(step, (c.length * 1000) / bytesPerSecond);
          } else if (!done) sock.once('readable', step);
        };
        step();
      });
    const slow = await attach(id, 'stream=1&stdout=1&stderr=1');
    const slowAll = readAll(slow, 500_000);
    await sleep(300);
    assert.equal((await stack.docker(['start', id])).code, 0);
    const got = demux(await slowAll);
    const logged = await stack.docker(['logs', id]);
    assert.ok(got.stdout.endsWith('the-end\n'), 'all of it');
    assert.equal(got.stdout.length, logged.stdout.length, 'every byte the log has');
    assert.equal(got.stderr, '', 'no notice');

    // An output past the bounds to a client that takes nothing for a while: it falls past 2 MiB in memory
    // and 6 MiB spooled, is cut off, and on reading again gets what had been queued for it, then the notice, then the end.
    const big = (await stack.docker(['create', 'busybox', 'sh', '-c', 'head -c 9000000 /dev/urandom | base64; echo the-end'])).stdout.trim();
    const late = await attach(big, 'stream=1&stdout=1&stderr=1');
    late.pause();
    await sleep(300);
    assert.equal((await stack.docker(['start', big])).code, 0);
    await sleep(4000);
    const lateGot = demux(await readAll(late, 50 << 20));
    assert.match(lateGot.stderr, /this client fell more than 8388608 bytes behind the container's output and was cut off/);
    // (The output that would have passed the bound is not queued: up to a read of the monitor's socket, 1 MiB, short of 8 MiB.)
    assert.ok(lateGot.stdout.length >= 7 * MiB && lateGot.stdout.length < 11 * MiB, `what had been queued: ${lateGot.stdout.length}`);
    assert.ok(!lateGot.stdout.includes('the-end'), 'not the end of it');
    const bigLog = await stack.docker(['logs', big]);
    assert.ok(bigLog.stdout.endsWith('the-end\n'), 'the container went on: its log has all of it');
    assert.equal((await stack.docker(['rm', '-f', id, big])).code, 0);
  });
});
