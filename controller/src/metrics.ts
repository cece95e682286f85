import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one controller instance (its own registry: no global state). */
export class ControllerMetrics {
  readonly registry = new Registry();

  constructor() {
    // Process CPU, memory, file descriptors, event-loop lag and GC (process_*, nodejs_*), collected at
    // scrape time into this registry only.
    collectDefaultMetrics({ register: this.registry });
  }

  readonly ingestMessages = new Counter({
    name: 'perch_ingest_messages_total',
    help: 'MQTT messages stored by the ingest, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly ingestRejects = new Counter({
    name: 'perch_ingest_rejects_total',
    help: 'MQTT messages rejected by the ingest, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly httpRejects = new Counter({
    name: 'perch_http_rejects_total',
    help: 'HTTP requests answered with an error, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly brokerRejects = new Counter({
    name: 'perch_broker_rejects_total',
    help: 'MQTT connects, publishes and subscribes refused by the embedded broker, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly httpLatency = new Histogram({
    name: 'perch_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'perch_webhook_deliveries_total',
    help: 'Webhook deliveries by outcome: enqueued, delivered, failed_attempt (will retry), dead_letter, enqueue_failure',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly fleetPublishes = new Counter({
    name: 'perch_fleet_events_published_total',
    help: 'Events re-published on the fleet topic, by result (ok, failed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly devicesOnline = new Gauge({
    name: 'perch_devices_online',
    help: 'Devices whose last status was online',
    registers: [this.registry],
  });

  /** Sum of a counter over all label values (for tests and the bench). */
  async total(counter: Counter<string>): Promise<number> {
    const data = await counter.get();
    return data.values.reduce((s, v) => s + v.value, 0);
  }
}
