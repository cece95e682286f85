import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore, type Store } from '../../../src/db/open';
import {
  KyselyWebhookStore,
  MemoryWebhookStore,
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
const opened: Store[] = [];
afterAll(async () => {
  for (const s of opened) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const stores: Array<[string, () => Promise<WebhookStore>]> = [
  ['memory', () => Promise.resolve(new MemoryWebhookStore())],
  [
    'kysely (the controller database)',
    async () => {
      const store = await openSqliteStore({ file: path.join(dir, `${Math.random()}.db`) });
      opened.push(store);
      return new KyselyWebhookStore(store);
    },
  ],
];

describe.each(stores)('%s webhook store', (_name, make) => {
  it('keeps subscriptions with their filters, updates and deletes them', async () => {
    const store = await make();
    await store.addSubscription(sub);
    expect(await store.getSubscription('wh-1')).toEqual(sub);
    expect(await store.updateSubscription('wh-1', { enabled: false })).toBe(true);
    expect((await store.listSubscriptions())[0]?.enabled).toBe(false);
    expect(await store.updateSubscription('nope', { enabled: false })).toBe(false);
    expect(await store.deleteSubscription('wh-1')).toBe(true);
    expect(await store.getSubscription('wh-1')).toBeUndefined();
  });

  it('hands out due deliveries oldest first, and knows the next due time', async () => {
    const store = await make();
    await store.addDeliveries([delivery('d2', 20), delivery('d1', 10), delivery('d3', 30)]);
    expect((await store.dueDeliveries(20, 10)).map((d) => d.id)).toEqual(['d1', 'd2']);
    expect((await store.dueDeliveries(20, 1)).map((d) => d.id)).toEqual(['d1']);
    expect(await store.nextDueAt()).toBe(10);
    expect(await store.countPending()).toBe(3);
  });

  it('moves a delivery to the dead letters and back', async () => {
    const store = await make();
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

describe('kysely webhook store', () => {
  it('keeps pending deliveries across a reopen of the database', async () => {
    const file = path.join(dir, 'reopen.db');
    const first = await openSqliteStore({ file });
    const store = new KyselyWebhookStore(first);
    await store.addSubscription(sub);
    await store.addDeliveries([delivery('d1', 10)]);
    await first.close();
    const second = await openSqliteStore({ file });
    opened.push(second);
    const again = new KyselyWebhookStore(second);
    expect((await again.dueDeliveries(10, 10)).map((d) => d.id)).toEqual(['d1']);
  });
});
