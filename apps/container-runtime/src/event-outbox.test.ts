import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EventLog, NewEvent } from '@stevedore/redis';
import { createLogger } from '@stevedore/logging';
import { EventOutbox } from './event-outbox';
import { ContainerDb } from './store/container-db';

const event = (n: number): NewEvent => ({ type: 'container', action: 'die', id: String(n).padStart(64, '0'), attributes: { exitCode: '0' } });

test('events wait in the database while the log does not take them, and go in order, once each, when it does', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-'));
  try {
    const file = path.join(dir, 'c.db');
    const sent: string[] = [];
    let failures = 2;
    const log = { append: async (e: NewEvent) => {
      if (failures-- > 0) throw new Error('Redis is down');
      sent.push(e.id);
      return `${sent.length}-0`;
    } } as unknown as EventLog;
    const db = new ContainerDb(file);
    const outbox = new EventOutbox(db, log, createLogger('test', 'silent'));
    for (let i = 0; i < 5; i++) outbox.publish(event(i));
    await outbox.flushed(5000);
    assert.deepEqual(sent, [0, 1, 2, 3, 4].map((i) => event(i).id));
    assert.equal(db.queuedEvents().length, 0);
    outbox.close();

    // Queued in a transaction that then fails: neither the change nor the event is kept.
    assert.throws(() => db.transaction(() => {
      outbox.queue(event(9));
      throw new Error('the change failed');
    }));
    assert.equal(db.queuedEvents().length, 0);

    // A process killed before sending: the next one, on the same database, sends what is left.
    db.queueEvent(JSON.stringify(event(7)));
    db.close();
    const again = new ContainerDb(file);
    const later = new EventOutbox(again, log, createLogger('test', 'silent'));
    later.drain();
    await later.flushed(5000);
    assert.equal(sent.at(-1), event(7).id);
    later.close();
    again.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
