import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  MemoryWebhookStore,
  SqliteWebhookStore,
  type Delivery,
  type WebhookStore,
} from '../../../src/integrations/webhooks';

const sub = {
  id: 'wh-1',
  url: 'http://127.0.0.1:1/hook',
  secret: 's'.repeat(32),
  filter: { labels: ['person'] },
  enabled: true,
  createdAt: 1,
};
const delivery = (id: string, nextAttemptAt: number): Delivery => ({
  id,
  subscriptionId: 'wh-1',
  body: `{"id":"${id}"}`,
  createdAt: nextAttemptAt,
  attempts: 0,
  nextAttemptAt,
  status: 'pending',
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-webhooks-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const stores: Array<[string, () => WebhookStore]> = [
  ['memory', () => new MemoryWebhookStore()],
  ['sqlite', () => new SqliteWebhookStore(new Database(path.join(dir, `${Math.random()}.db`)))],
];

describe.each(stores)('%s webhook store', (_name, make) => {
  it('keeps subscriptions with their filters, updates and deletes them', async () => {
    const store = make();
    await store.addSubscription(sub);
    expect(await store.getSubscription('wh-1')).toEqual(sub);
    expect(await store.updateSubscription('wh-1', { enabled: false })).toBe(true);
    expect((await store.listSubscriptions())[0]?.enabled).toBe(false);
    expect(await store.updateSubscription('nope', { enabled: false })).toBe(false);
    expect(await store.deleteSubscription('wh-1')).toBe(true);
    expect(await store.getSubscription('wh-1')).toBeUndefined();
  });

  it('hands out due deliveries oldest first, and knows the next due time', async () => {
    const store = make();
    await store.addDeliveries([delivery('d2', 20), delivery('d1', 10), delivery('d3', 30)]);
    expect((await store.dueDeliveries(20, 10)).map((d) => d.id)).toEqual(['d1', 'd2']);
    expect((await store.dueDeliveries(20, 1)).map((d) => d.id)).toEqual(['d1']);
    expect(await store.nextDueAt()).toBe(10);
    expect(await store.countPending()).toBe(3);
  });

  it('moves a delivery to the dead letters and back', async () => {
    const store = make();
    await store.addDeliveries([delivery('d1', 10)]);
    await store.updateDelivery('d1', {
      attempts: 3,
      nextAttemptAt: 50,
      status: 'dead',
      lastError: 'HTTP 500',
      lastStatus: 500,
      deadAt: 50,
    });
    expect(await store.dueDeliveries(100, 10)).toEqual([]);
    expect(await store.nextDueAt()).toBeUndefined();
    expect(await store.listDeadLetters()).toEqual([
      {
        ...delivery('d1', 10),
        attempts: 3,
        nextAttemptAt: 50,
        status: 'dead',
        lastError: 'HTTP 500',
        lastStatus: 500,
        deadAt: 50,
      },
    ]);
    expect(await store.deleteDelivery('d1')).toBe(true);
    expect(await store.getDelivery('d1')).toBeUndefined();
  });
});

describe('sqlite webhook store', () => {
  it('keeps pending deliveries across a reopen of the database', async () => {
    const file = path.join(dir, 'reopen.db');
    const first = new Database(file);
    await new SqliteWebhookStore(first).addDeliveries([delivery('d1', 10)]);
    first.close();
    const again = new SqliteWebhookStore(new Database(file));
    expect((await again.dueDeliveries(10, 10)).map((d) => d.id)).toEqual(['d1']);
  });
});
