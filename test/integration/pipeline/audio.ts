import { execFileSync } from 'node:child_process';

/** Whether espeak-ng is installed (the VAD tests need it; CI installs it). */
export function hasEspeak(): boolean {
  try {
    execFileSync('espeak-ng', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Speech synthesised by espeak-ng, as 16 kHz mono float samples in -1..1. */
export function speak(text: string): Float32Array {
  const wav = execFileSync('espeak-ng', ['--stdout', '-s', '150', text], { maxBuffer: 64 * 1024 * 1024 });
  return resample(parseWav(wav), 16_000);
}

interface Pcm {
  readonly rate: number;
  readonly samples: Float32Array;
}

/** 16-bit PCM WAV (mono or the first channel); espeak-ng writes a streaming header with no sizes. */
export function parseWav(buf: Buffer): Pcm {
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE')
    throw new Error('not a WAV');
  let at = 12;
  let rate = 0;
  let channels = 1;
  while (at + 8 <= buf.length) {
    const id = buf.toString('ascii', at, at + 4);
    let size = buf.readUInt32LE(at + 4);
    if (id === 'fmt ') {
      channels = buf.readUInt16LE(at + 10);
      rate = buf.readUInt32LE(at + 12);
    } else if (id === 'data') {
      if (size === 0 || size === 0xffffffff || at + 8 + size > buf.length) size = buf.length - at - 8;
      const n = Math.floor(size / 2 / channels);
      const samples = new Float32Array(n);
      for (let i = 0; i < n; i++) samples[i] = buf.readInt16LE(at + 8 + i * 2 * channels) / 32768;
      return { rate, samples };
    }
    at += 8 + size + (size % 2);
  }
  throw new Error('WAV without data');
}

/** Linear-interpolation resampling; good enough for voice activity. */
export function resample(pcm: Pcm, rate: number): Float32Array {
  const n = Math.floor((pcm.samples.length * rate) / pcm.rate);
  const out = new Float32Array(n);
  const step = pcm.rate / rate;
  for (let i = 0; i < n; i++) {
    const x = i * step;
    const i0 = Math.floor(x);
    const f = x - i0;
    out[i] = (pcm.samples[i0] ?? 0) * (1 - f) + (pcm.samples[i0 + 1] ?? 0) * f;
  }
  return out;
}

/** Deterministic white noise. */
export function noise(n: number, amplitude: number, seed = 7): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    out[i] = (s / 0x7fffffff - 0.5) * 2 * amplitude;
  }
  return out;
}
