import fs from 'node:fs';
import path from 'node:path';
import { PerchError } from '@perch/shared';
import { listImages } from './demo-feeder';

/** What the demo pipeline reads, and whether the launcher must feed a folder with photographs. */
export interface DemoSource {
  /** The source config for the pipeline (agent source schema). */
  source: Record<string, unknown> & { kind: string };
  /** Photographs to cycle into `source.path`, when the source is the fed folder. */
  feed?: string[];
  /** For the banner. */
  describe: string;
  /**
   * The local agent's `remotePipelines` policy: the demo pipeline comes from the desired state, and a
   * video file is a file read, which the agent refuses from the desired state unless its owner allows it.
   */
  remotePipelines?: { allowFileSources: true };
}

const VIDEO = /\.(mp4|mkv|avi|mov|webm|m4v|mjpe?g|ts|flv)$/i;

/**
 * PERCH_DEMO_SOURCE: a folder of images (cycled as a slideshow), a video file (looped), an rtsp://
 * URL, an http(s):// URL (a JPEG snapshot URL when it ends in .jpg/.jpeg, else an MJPEG stream), or
 * a V4L2 device. Unset: photographs of faces shipped with an npm package installed by `npm ci`.
 */
export function resolveDemoSource(
  raw: string | undefined,
  framesDir: string,
  defaultImages: () => string[],
): DemoSource {
  const fed = (images: string[], what: string): DemoSource => {
    if (images.length === 0)
      throw new PerchError('E_DEMO_SOURCE', `${what} has no .jpg, .png or .webp images`);
    return {
      source: { kind: 'folder', path: framesDir, rescanMs: 500, stableMs: 100 },
      feed: images,
      describe: `${images.length} photographs from ${what}, shown one every 2 s`,
    };
  };
  if (raw === undefined || raw.trim() === '') return fed(defaultImages(), 'the bundled sample photographs');
  const value = raw.trim();
  if (/^rtsps?:\/\//i.test(value))
    return { source: { kind: 'rtsp', url: value, fps: 2 }, describe: `RTSP stream ${value}` };
  if (/^https?:\/\//i.test(value)) {
    return /\.jpe?g(\?.*)?$/i.test(value)
      ? { source: { kind: 'snapshot-url', url: value, intervalMs: 1000 }, describe: `snapshot URL ${value}` }
      : { source: { kind: 'mjpeg', url: value, fps: 2 }, describe: `MJPEG stream ${value}` };
  }
  if (/^\/dev\/video\d{1,3}$/.test(value))
    return { source: { kind: 'v4l2', device: value, fps: 2 }, describe: `camera ${value}` };
  const abs = path.resolve(value);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch {
    throw new PerchError(
      'E_DEMO_SOURCE',
      `PERCH_DEMO_SOURCE=${value}: no such file, folder, URL or /dev/videoN`,
    );
  }
  if (stat.isDirectory()) return fed(listImages(abs), abs);
  if (stat.isFile() && VIDEO.test(abs)) {
    return {
      source: { kind: 'file', path: abs, loop: true, fps: 2 },
      describe: `video file ${abs} (looped)`,
      remotePipelines: { allowFileSources: true },
    };
  }
  if (stat.isFile() && /\.(jpe?g|png|webp)$/i.test(abs)) return fed([abs], abs);
  throw new PerchError(
    'E_DEMO_SOURCE',
    `PERCH_DEMO_SOURCE=${value}: not a folder of images, a video file, a URL or /dev/videoN`,
  );
}
