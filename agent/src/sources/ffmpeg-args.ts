import type { AudioSourceConfig, CameraSourceConfig } from './config';

/**
 * ffmpeg command lines, built as argv arrays (never a shell string), from validated configs. Pure, so the
 * exact arguments per input kind are unit-tested without running ffmpeg.
 */
const COMMON = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error'] as const;

/** Input arguments for a camera kind. */
export function cameraInputArgs(config: CameraSourceConfig): string[] {
  switch (config.kind) {
    case 'lavfi':
      // lavfi generates as fast as it is read: -re paces it like a real camera.
      return ['-re', '-f', 'lavfi', '-i', config.graph];
    case 'file':
      return [
        ...(config.realtime ? ['-re'] : []),
        ...(config.loop ? ['-stream_loop', '-1'] : []),
        '-i',
        config.path,
      ];
    case 'rtsp':
      return [
        '-rtsp_transport',
        config.transport,
        // ffmpeg >= 5: socket I/O timeout for RTSP, in microseconds.
        '-timeout',
        String(config.timeoutMs * 1000),
        '-i',
        config.url,
      ];
    case 'v4l2':
      return [
        '-f',
        'v4l2',
        ...(config.inputFormat ? ['-input_format', config.inputFormat] : []),
        ...(config.captureSize ? ['-video_size', config.captureSize] : []),
        ...(config.captureFps ? ['-framerate', String(config.captureFps)] : []),
        '-i',
        config.device,
      ];
    case 'mjpeg':
      // multipart/x-mixed-replace over HTTP; probing by content would misread the MIME boundaries.
      return ['-f', 'mpjpeg', '-i', config.url];
  }
}

/** The video filter chain: rate first, so frames we would drop are never scaled. */
export function cameraFilters(config: CameraSourceConfig): string[] {
  const filters: string[] = [];
  if (config.fps !== undefined) filters.push(`fps=${config.fps}`);
  if (config.width !== undefined || config.height !== undefined) {
    // -2 keeps the aspect ratio with an even size, which the encoders want.
    filters.push(`scale=${config.width ?? -2}:${config.height ?? -2}`);
  }
  return filters;
}

export function cameraArgs(config: CameraSourceConfig): string[] {
  const filters = cameraFilters(config);
  const output =
    config.output === 'rgb24'
      ? ['-f', 'rawvideo', '-pix_fmt', 'rgb24']
      : ['-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', String(config.quality)];
  return [
    ...COMMON,
    ...cameraInputArgs(config),
    '-an',
    '-sn',
    '-dn',
    ...(filters.length ? ['-vf', filters.join(',')] : []),
    ...output,
    'pipe:1',
  ];
}

export function audioArgs(config: AudioSourceConfig): string[] {
  const input = config.input;
  let inputArgs: string[];
  switch (input.type) {
    case 'file':
      inputArgs = [
        ...(input.realtime ? ['-re'] : []),
        ...(input.loop ? ['-stream_loop', '-1'] : []),
        '-i',
        input.path,
      ];
      break;
    case 'lavfi':
      inputArgs = ['-re', '-f', 'lavfi', '-i', input.graph];
      break;
    case 'alsa':
      inputArgs = ['-f', 'alsa', '-i', input.device];
      break;
  }
  return [
    ...COMMON,
    ...inputArgs,
    '-vn',
    '-sn',
    '-dn',
    '-ac',
    '1',
    '-ar',
    String(config.sampleRate),
    '-f',
    'f32le',
    'pipe:1',
  ];
}
