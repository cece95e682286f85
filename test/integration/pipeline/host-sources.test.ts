import '../../../agent/test/pipeline/helpers/ort-realm';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createLogger, type EventMessage, type PipelineConfig } from '@perch/shared';
import type { ActiveModel, PipelineHost } from '../../../agent/src/core/pipelines-port';
import { createPipelineHost } from '../../../agent/src/pipeline/host';
import type { ModelBundle } from '../../../agent/src/pipeline/types';
import { fixturePath } from '../../helpers/fixtures';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { hasEspeak } from './audio';
import { blazefaceBundle, facePhotos } from './helpers';

const logger = createLogger({ namespace: 'test', silent: true });

function has(cmd: string, arg = '-version'): boolean {
  try {
    execFileSync(cmd, [arg], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const active = (bundle: ModelBundle): ActiveModel => ({
  name: bundle.name,
  version: bundle.version,
  sha256: 'a'.repeat(64),
  bundle,
});

/** The agent core's view: desired pipeline configs and installed models in, events out of its sink. */
describe('pipeline host with real sources', () => {
  let tmp: ReturnType<typeof tempDir>;
  let host: PipelineHost;
  let events: EventMessage[];
  beforeEach(() => {
    tmp = tempDir();
    events = [];
    host = createPipelineHost({
      events: { emit: (e) => void events.push(e) },
      snapshotsDir: path.join(tmp.dir, 'snapshots'),
      logger,
      inference: { intraOpThreads: 1 },
    });
  });
  afterEach(async () => {
    await host.stop();
    tmp.cleanup();
  });

  it('finds the faces in photographs dropped into a watched folder, with snapshots', async () => {
    const inbox = path.join(tmp.dir, 'inbox');
    fs.mkdirSync(inbox);
    const config: PipelineConfig = {
      id: 'door',
      model: 'blazeface',
      source: { kind: 'folder', path: inbox, stableMs: 50, rescanMs: 100 },
      rules: { labels: ['face'], minScore: 0.6 },
    };
    await host.apply([config], new Map([['blazeface', active(blazefaceBundle())]]));
    expect(host.stats()[0]).toMatchObject({ id: 'door', state: 'running', model: { provider: 'cpu' } });
    fs.copyFileSync(facePhotos()[0]!, path.join(inbox, 'visitor.jpg'));
    const start = await waitFor(() => events.find((e) => e.phase === 'start'), { what: 'a face event' });
    expect(start).toMatchObject({
      pipeline: 'door',
      label: 'face',
      model: { name: 'blazeface', version: '1.2.0' },
    });
    expect(fs.existsSync(path.join(tmp.dir, 'snapshots', `${start.snapshot}.jpg`))).toBe(true);
    expect(host.stats()[0]!.detections).toBe(3);
  });

  const withFfmpeg = has('ffmpeg') ? it : it.skip;

  withFfmpeg(
    'runs an ffmpeg test pattern through BlazeFace: frames processed, no faces, no events',
    async () => {
      const config: PipelineConfig = {
        id: 'pattern',
        model: 'blazeface',
        source: { kind: 'lavfi', graph: 'testsrc2=size=640x360:rate=10' },
        fps: 10,
      };
      await host.apply([config], new Map([['blazeface', active(blazefaceBundle())]]));
      const s = await waitFor(
        () => {
          const x = host.stats()[0];
          return x && x.processed >= 5 ? x : undefined;
        },
        { what: 'five frames through the pipeline' },
      );
      expect(s.detections).toBe(0);
      expect(events).toEqual([]);
      expect(s.source).toMatchObject({ state: 'running' });
    },
  );

  const withAudio = has('ffmpeg') && (hasEspeak() || process.env.CI === 'true') ? it : it.skip;

  withAudio(
    'hears espeak-ng speech in an audio file through Silero VAD: one speech event that ends',
    async () => {
      const wav = path.join(tmp.dir, 'speech.wav');
      execFileSync('espeak-ng', ['-w', wav, 'Hello. Someone is at the front door with a parcel.']);
      const padded = path.join(tmp.dir, 'padded.wav');
      // One second of silence before and two after the speech.
      execFileSync('ffmpeg', [
        '-v',
        'error',
        '-f',
        'lavfi',
        '-t',
        '1',
        '-i',
        'anullsrc=r=22050:cl=mono',
        '-i',
        wav,
        '-f',
        'lavfi',
        '-t',
        '2',
        '-i',
        'anullsrc=r=22050:cl=mono',
        '-filter_complex',
        '[0][1][2]concat=n=3:v=0:a=1',
        padded,
      ]);
      const vad: ModelBundle = {
        name: 'silero-vad',
        version: '4',
        model: fixturePath('silero_vad.onnx'),
        spec: { input: { kind: 'audio', name: 'input', windowSamples: 512 }, postprocessor: { kind: 'vad' } },
      };
      const config: PipelineConfig = {
        id: 'mic',
        model: 'silero-vad',
        source: { kind: 'audio', input: { type: 'file', path: padded, realtime: true }, window: 512 },
        rules: { holdOffMs: 1000 },
        options: { queueSize: 2 },
      };
      await host.apply([config], new Map([['silero-vad', active(vad)]]));
      await waitFor(() => events.some((e) => e.phase === 'end'), {
        what: 'the end of speech',
        timeoutMs: 30_000,
      });
      // One occurrence: start, an update a second while it lasts, one end, all with the same eventId.
      const phases = events.map((e) => e.phase);
      expect(phases[0]).toBe('start');
      expect(phases[phases.length - 1]).toBe('end');
      expect(phases.slice(1, -1).every((p) => p === 'update')).toBe(true);
      expect(new Set(events.map((e) => `${e.label}/${e.eventId}`))).toEqual(
        new Set([`speech/${events[0]!.eventId}`]),
      );
    },
    40_000,
  );
});
