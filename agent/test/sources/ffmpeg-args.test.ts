import { parseSourceConfig } from '../../src/sources';
import type { AudioSourceConfig, CameraSourceConfig } from '../../src/sources/config';
import { audioArgs, cameraArgs } from '../../src/sources/ffmpeg-args';

const camera = (v: unknown) => cameraArgs(parseSourceConfig(v) as CameraSourceConfig);
const audio = (v: unknown) => audioArgs(parseSourceConfig(v) as AudioSourceConfig);

/** The value following a flag. */
function after(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

describe('ffmpeg arguments', () => {
  it('paces lavfi input and writes MJPEG to stdout at the target rate and size', () => {
    const args = camera({ kind: 'lavfi', graph: 'testsrc2', fps: 5, width: 320 });
    expect(args.slice(args.indexOf('-re'), args.indexOf('-re') + 5)).toEqual([
      '-re',
      '-f',
      'lavfi',
      '-i',
      'testsrc2',
    ]);
    expect(after(args, '-vf')).toBe('fps=5,scale=320:-2');
    expect(after(args, '-f')).toBe('lavfi');
    expect(args.slice(-7)).toEqual(['-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '4', 'pipe:1']);
    expect(args).toContain('-nostdin');
  });

  it('writes raw rgb24 at a fixed size when asked', () => {
    const args = camera({
      kind: 'file',
      path: '/v.mp4',
      output: 'rgb24',
      width: 64,
      height: 48,
      realtime: false,
      loop: true,
    });
    expect(args).not.toContain('-re');
    expect(after(args, '-stream_loop')).toBe('-1');
    expect(after(args, '-vf')).toBe('scale=64:48');
    expect(args.slice(-5)).toEqual(['-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
  });

  it('uses TCP and an I/O timeout in microseconds for RTSP', () => {
    const args = camera({ kind: 'rtsp', url: 'rtsp://h/s', timeoutMs: 5000 });
    expect(after(args, '-rtsp_transport')).toBe('tcp');
    expect(after(args, '-timeout')).toBe('5000000');
    expect(after(args, '-i')).toBe('rtsp://h/s');
  });

  it('asks V4L2 for the capture format, size and rate', () => {
    const args = camera({
      kind: 'v4l2',
      device: '/dev/video2',
      inputFormat: 'mjpeg',
      captureSize: '1280x720',
      captureFps: 30,
    });
    expect(after(args, '-f')).toBe('v4l2');
    expect(after(args, '-input_format')).toBe('mjpeg');
    expect(after(args, '-video_size')).toBe('1280x720');
    expect(after(args, '-framerate')).toBe('30');
    expect(after(args, '-i')).toBe('/dev/video2');
  });

  it('reads HTTP MJPEG with the multipart demuxer', () => {
    const args = camera({ kind: 'mjpeg', url: 'http://h/video.mjpg' });
    expect(args.slice(args.indexOf('-i') - 2, args.indexOf('-i') + 2)).toEqual([
      '-f',
      'mpjpeg',
      '-i',
      'http://h/video.mjpg',
    ]);
  });

  it('resamples audio to mono float PCM', () => {
    const args = audio({ kind: 'audio', input: { type: 'alsa', device: 'hw:1,0' } });
    expect(after(args, '-f')).toBe('alsa');
    expect(after(args, '-i')).toBe('hw:1,0');
    expect(args.slice(-7)).toEqual(['-ac', '1', '-ar', '16000', '-f', 'f32le', 'pipe:1']);
    expect(audio({ kind: 'audio', input: { type: 'file', path: '/a.wav', realtime: false } })).not.toContain(
      '-re',
    );
  });
});
