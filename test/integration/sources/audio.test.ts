import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { AudioWindow } from '../../../agent/src/pipeline/types';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { Started } from './helpers';

jest.setTimeout(60_000);

const execFileAsync = promisify(execFile);
const started = new Started();
let tmp: ReturnType<typeof tempDir>;

beforeEach(() => {
  tmp = tempDir('perch-audio-');
});

afterEach(async () => {
  await started.stopAll();
  tmp.cleanup();
});

async function durationOf(file: string): Promise<number> {
  const { stdout } = await execFileAsync('ffprobe', [
    '-v',
    'error',
    '-show_entries',
    'format=duration',
    '-of',
    'csv=p=0',
    file,
  ]);
  return Number(stdout.trim());
}

const peak = (w: AudioWindow) => w.samples.reduce((m, s) => Math.max(m, Math.abs(s)), 0);

describe('audio source', () => {
  it('turns speech made by espeak-ng into 16 kHz mono float windows of 512 samples', async () => {
    const wav = path.join(tmp.dir, 'speech.wav');
    await execFileAsync('espeak-ng', ['-w', wav, 'Perch is listening to the garden']);
    const seconds = await durationOf(wav);
    const { source, items } = await started.start<AudioWindow>({
      kind: 'audio',
      input: { type: 'file', path: wav, realtime: false },
      window: 512,
    });
    await waitFor(() => source.health().ended, { what: 'end of the speech file' });
    await waitFor(() => source.stats().produced + source.stats().dropped === source.health().itemsIn, {
      what: 'all windows delivered',
    });
    // espeak writes 22.05 kHz; resampled to 16 kHz the file holds about seconds * 16000 samples.
    const expected = Math.floor((seconds * 16_000) / 512);
    expect(items.length).toBeGreaterThanOrEqual(expected - 1);
    expect(items.length).toBeLessThanOrEqual(expected + 1);
    for (const w of items) {
      expect(w.sampleRate).toBe(16_000);
      expect(w.samples).toBeInstanceOf(Float32Array);
      expect(w.samples.length).toBe(512);
    }
    expect(Math.max(...items.map(peak))).toBeGreaterThan(0.1);
    expect(items.every((w) => w.samples.every((s) => s >= -1 && s <= 1))).toBe(true);
    expect(source.stats().dropped).toBe(0);
  });

  it('overlaps windows when hop is smaller than window', async () => {
    const wav = path.join(tmp.dir, 'speech.wav');
    await execFileAsync('espeak-ng', ['-w', wav, 'overlap']);
    const run = async (hop: number) => {
      const { source, items } = await started.start<AudioWindow>({
        kind: 'audio',
        input: { type: 'file', path: wav, realtime: false },
        window: 512,
        hop,
      });
      await waitFor(() => source.health().ended, { what: 'end of file' });
      await waitFor(() => source.stats().produced === source.health().itemsIn, { what: 'delivery' });
      return items;
    };
    const plain = await run(512);
    const overlapped = await run(256);
    expect(overlapped.length).toBeGreaterThanOrEqual(2 * plain.length - 1);
    // The second half of one window is the first half of the next.
    expect(Array.from(overlapped[1]!.samples.subarray(0, 256))).toEqual(
      Array.from(overlapped[0]!.samples.subarray(256)),
    );
  });

  it('gives silent windows for ffmpeg lavfi silence', async () => {
    const { source, items } = await started.start<AudioWindow>({
      kind: 'audio',
      input: { type: 'lavfi', graph: 'anullsrc=r=48000:cl=stereo,atrim=duration=1' },
    });
    await waitFor(() => source.health().ended, { what: 'end of the silence' });
    await waitFor(() => source.stats().produced === source.health().itemsIn, { what: 'delivery' });
    expect(items).toHaveLength(Math.floor(16_000 / 512));
    expect(items.every((w) => peak(w) === 0)).toBe(true);
  });
});
