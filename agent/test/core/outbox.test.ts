import { tempDir } from '../../../test/helpers/tmp';
import { Counters } from '../../src/core/counters';
import { openAgentDatabase } from '../../src/core/database';
import { DEFAULT_OUTBOX_OPTIONS, Outbox, type OutboxOptions } from '../../src/core/outbox';
import { OutboxSender, type AckPublisher } from '../../src/core/outbox-sender';
import { ManualClock } from '@perch/shared';
import { silentLogger } from './helpers';

function small(): OutboxOptions {
  return {
    limits: {
      ...DEFAULT_OUTBOX_OPTIONS.limits,
      events: { maxRows: 5, maxBytes: 10_000 },
      telemetry: { maxRows: 3, maxBytes: 10_000 },
    },
    totalMaxBytes: 10_000,
  };
}

describe('Outbox', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  const open = (options = small()) => {
    const db = openAgentDatabase(`${tmp.dir}/agent.db`);
    return { db, outbox: new Outbox(db, options, silentLogger(), new Counters(), () => 1) };
  };

  it('keeps messages across a reopen until they are acknowledged', () => {
    const a = open();
    a.outbox.enqueue('events', 't/events', 'msg-00001', '{"a":1}');
    a.outbox.enqueue('telemetry', 't/telemetry', 'msg-00002', '{"b":2}');
    a.db.close();
    const b = open();
    const pending = b.outbox.pending(10);
    expect(pending.map((m) => m.msgId)).toEqual(['msg-00001', 'msg-00002']);
    b.outbox.ack(pending[0]!.seq);
    expect(b.outbox.depth()).toBe(1);
    b.db.close();
  });

  it('drops the oldest of a kind when the kind is full, and counts it durably', () => {
    const a = open();
    for (let i = 0; i < 5; i++) a.outbox.enqueue('telemetry', 't', `tele-0000${i}`, 'x');
    expect(a.outbox.pending(10).map((m) => m.msgId)).toEqual(['tele-00002', 'tele-00003', 'tele-00004']);
    expect(a.outbox.dropped().telemetry).toBe(2);
    a.db.close();
    expect(open().outbox.droppedTotal()).toBe(2);
  });

  it('lets events outrank routine telemetry when the total size is exceeded', () => {
    const options = small();
    options.totalMaxBytes = 3000;
    const { outbox, db } = open(options);
    const kb = 'x'.repeat(1000);
    outbox.enqueue('telemetry', 't', 'tele-00001', kb);
    outbox.enqueue('events', 'e', 'event-0001', kb);
    outbox.enqueue('events', 'e', 'event-0002', kb);
    outbox.enqueue('events', 'e', 'event-0003', kb);
    expect(outbox.pending(10).map((m) => m.msgId)).toEqual(['event-0001', 'event-0002', 'event-0003']);
    expect(outbox.dropped()).toMatchObject({ telemetry: 1, events: 0 });
    db.close();
  });

  it('sends events before telemetry', () => {
    const { outbox, db } = open();
    outbox.enqueue('telemetry', 't', 'tele-00001', 'x');
    outbox.enqueue('events', 'e', 'event-0001', 'x');
    expect(outbox.pending(10).map((m) => m.kind)).toEqual(['events', 'telemetry']);
    db.close();
  });

  it('refuses a message larger than its kind allows, counting it', () => {
    const { outbox, db } = open();
    expect(outbox.enqueue('events', 'e', 'event-0001', 'x'.repeat(20_000))).toBe(false);
    expect(outbox.dropped().events).toBe(1);
    db.close();
  });
});

describe('OutboxSender', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  class FakePublisher implements AckPublisher {
    connected = true;
    sent: Array<{ topic: string; resolve: () => void; reject: (e: Error) => void }> = [];
    publishAcked(topic: string): Promise<void> {
      return new Promise((resolve, reject) => this.sent.push({ topic, resolve, reject }));
    }
  }

  it('deletes a row only on acknowledgement and resends an unacknowledged one', async () => {
    const db = openAgentDatabase(`${tmp.dir}/agent.db`);
    const clock = new ManualClock();
    const outbox = new Outbox(db, DEFAULT_OUTBOX_OPTIONS, silentLogger(), new Counters(), () => clock.now());
    const pub = new FakePublisher();
    const sender = new OutboxSender(outbox, pub, clock, silentLogger(), { window: 2, ackTimeoutMs: 1000 });
    for (let i = 0; i < 3; i++) outbox.enqueue('events', `e${i}`, `event-000${i}`, 'x');
    sender.kick();
    expect(pub.sent.map((s) => s.topic)).toEqual(['e0', 'e1']);
    pub.sent[0]!.resolve();
    await clock.advance(0);
    expect(outbox.depth()).toBe(2);
    expect(pub.sent.map((s) => s.topic)).toEqual(['e0', 'e1', 'e2']);
    pub.sent[1]!.reject(new Error('connection lost'));
    await clock.advance(0);
    sender.kick();
    expect(pub.sent.map((s) => s.topic)).toEqual(['e0', 'e1', 'e2', 'e1']);
    expect(outbox.depth()).toBe(2);
    db.close();
  });

  it('sends nothing while offline and does not count an outage as unhealthy', () => {
    const db = openAgentDatabase(`${tmp.dir}/agent.db`);
    const clock = new ManualClock();
    const outbox = new Outbox(db, DEFAULT_OUTBOX_OPTIONS, silentLogger(), new Counters(), () => clock.now());
    const pub = new FakePublisher();
    pub.connected = false;
    const sender = new OutboxSender(outbox, pub, clock, silentLogger());
    outbox.enqueue('events', 'e', 'event-0001', 'x');
    sender.kick();
    expect(pub.sent).toHaveLength(0);
    expect(sender.healthy(1)).toBe(true);
    db.close();
  });
});
