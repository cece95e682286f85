import '../../../agent/test/pipeline/helpers/ort-realm';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { createLogger, type EventMessage, type PipelineConfig } from '@perch/shared';
import type { ActiveModel, PipelineHost } from '../../../agent/src/core/pipelines-port';
import { createPipelineHost } from '../../../agent/src/pipeline/host';
import { identityModel } from '../../../agent/test/pipeline/helpers/onnx-builder';
import { TestMosquitto } from '../../helpers/mosquitto';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';

jest.setTimeout(60_000);

const logger = createLogger({ namespace: 'test', silent: true });

/** Three readings in, the largest one's label out: identity model + classification. */
const activity: ActiveModel = {
  name: 'activity',
  version: '1',
  sha256: 'b'.repeat(64),
  bundle: {
    name: 'activity',
    version: '1',
    model: identityModel([1, 3]),
    spec: {
      input: { kind: 'tensor', name: 'x', shape: [1, 3] },
      postprocessor: { kind: 'classification', params: { topK: 1 } },
      labels: ['idle', 'walk', 'run'],
    },
  },
};

/**
 * A sensor-mqtt pipeline through the pipeline host built the way perch-agent builds it (events,
 * snapshots folder, logger; no source deps): the source opens its own connection to the sensor's
 * broker with the credentials of its config, since the device login cannot read other topics.
 */
describe('sensor-mqtt pipeline on its own broker connection', () => {
  let broker: TestMosquitto;
  let station: MqttClient;
  let tmp: ReturnType<typeof tempDir>;
  let host: PipelineHost;
  let events: EventMessage[];

  beforeAll(async () => {
    broker = await TestMosquitto.start({
      users: { reader: 'reader-pw', station: 'station-pw' },
      acl: ['user reader', 'topic read imu/#', '', 'user station', 'topic write imu/#', ''].join('\n'),
    });
    station = await mqtt.connectAsync(broker.url, {
      username: 'station',
      password: 'station-pw',
      reconnectPeriod: 0,
    });
  });
  afterAll(async () => {
    await station?.endAsync();
    await broker?.close();
  });
  beforeEach(() => {
    tmp = tempDir();
    events = [];
    host = createPipelineHost({
      events: { emit: (e) => void events.push(e) },
      snapshotsDir: path.join(tmp.dir, 'snapshots'),
      logger,
    });
  });
  afterEach(async () => {
    await host.stop();
    tmp.cleanup();
  });

  const pipeline = (password: string): PipelineConfig => ({
    id: 'wrist',
    model: 'activity',
    source: {
      kind: 'sensor-mqtt',
      url: broker.url,
      username: 'reader',
      password,
      topic: 'imu/+/activity',
      qos: 1,
      fields: ['idle', 'walk', 'run'],
      window: 1,
    },
    rules: { labels: ['run'] },
    outputs: { snapshots: false },
  });

  it('subscribes with the configured login and turns readings into events', async () => {
    await host.apply([pipeline('reader-pw')], new Map([['activity', activity]]));
    await waitFor(() => host.stats()[0]?.source?.state === 'running', { what: 'subscribed' });
    await station.publishAsync('imu/left/activity', '{"idle": 0.1, "walk": 0.2, "run": 0.9}', { qos: 1 });
    const start = await waitFor(() => events.find((e) => e.phase === 'start'), { what: 'a run event' });
    expect(start).toMatchObject({ pipeline: 'wrist', label: 'run' });
    expect(host.stats()[0]).toMatchObject({ state: 'running', processed: 1 });
  });

  it('reports a refused login as E_SOURCE_MQTT without the password', async () => {
    await host.apply([pipeline('wrong-pw')], new Map([['activity', activity]]));
    const source = await waitFor(
      () => {
        const s = host.stats()[0]?.source;
        return s?.lastError?.code === 'E_SOURCE_MQTT' ? s : undefined;
      },
      { what: 'the refused connection' },
    );
    expect(source.state).toBe('backoff');
    expect(JSON.stringify(host.stats())).not.toContain('wrong-pw');
  });
});
