import { z } from 'zod';
import { formatIssues, PerchError } from '@perch/shared';

/**
 * Source configuration: one schema per kind, joined into a discriminated union on `kind`. The desired state
 * carries the source as a loose object (shared `pipelineConfigSchema`); `createSource` validates it here,
 * all issues at once, unknown keys refused.
 */

const backoffSchema = z.strictObject({
  initialMs: z.number().int().min(10).max(600_000).default(500),
  maxMs: z.number().int().min(10).max(3_600_000).default(30_000),
  factor: z.number().min(1).max(10).default(2),
  jitter: z.number().min(0).max(1).default(0.2),
});

const pathSchema = z.string().min(1).max(4096);

function urlWith(protocols: readonly string[]) {
  return z
    .string()
    .max(4096)
    .refine(
      (s) => {
        try {
          return protocols.includes(new URL(s).protocol);
        } catch {
          return false;
        }
      },
      { message: `must be a URL with scheme ${protocols.map((p) => p.replace(':', '')).join(' or ')}` },
    );
}

/** Options every ffmpeg-backed camera kind shares. */
const cameraCommon = {
  id: z.string().max(64).optional(),
  /** Frames per second handed on (ffmpeg's fps filter). Absent: the input's own rate. */
  fps: z.number().positive().max(120).optional(),
  /** Scale to this size; with only one of them the other keeps the aspect ratio. */
  width: z.number().int().min(16).max(7680).optional(),
  height: z.number().int().min(16).max(4320).optional(),
  /**
   * jpeg: ffmpeg encodes MJPEG, split on JPEG markers; the frame size may change mid-stream and the pipe
   * carries ~10x less. rgb24: raw pixels at a fixed size (width and height required); no encode/decode.
   */
  output: z.enum(['jpeg', 'rgb24']).default('jpeg'),
  /** ffmpeg -q:v for jpeg output: 2 (best) .. 31. */
  quality: z.number().int().min(2).max(31).default(4),
  /** Restart ffmpeg when it sends nothing for this long; 0 disables. */
  stallTimeoutMs: z.number().int().min(0).max(600_000).default(20_000),
  maxFrameBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(16 * 1024 * 1024),
  backoff: backoffSchema.optional(),
};

function requireRawSize<
  T extends { output: string; width?: number | undefined; height?: number | undefined },
>(v: T, ctx: z.RefinementCtx): void {
  if (v.output === 'rgb24' && (v.width === undefined || v.height === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['output'], message: 'rgb24 output needs both width and height' });
  }
}

export const lavfiSourceSchema = z.strictObject({
  kind: z.literal('lavfi'),
  /** An ffmpeg lavfi graph, e.g. `testsrc2=size=640x480:rate=10`. */
  graph: z.string().min(1).max(1024),
  ...cameraCommon,
});

export const fileSourceSchema = z.strictObject({
  kind: z.literal('file'),
  path: pathSchema,
  /** Read at the file's own frame rate (ffmpeg -re) rather than as fast as possible. */
  realtime: z.boolean().default(true),
  /** Start again at the end instead of ending the source. */
  loop: z.boolean().default(false),
  ...cameraCommon,
});

export const rtspSourceSchema = z.strictObject({
  kind: z.literal('rtsp'),
  url: urlWith(['rtsp:', 'rtsps:']),
  transport: z.enum(['tcp', 'udp']).default('tcp'),
  /** Socket I/O timeout inside ffmpeg. */
  timeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  ...cameraCommon,
});

export const v4l2SourceSchema = z.strictObject({
  kind: z.literal('v4l2'),
  device: z.string().regex(/^\/dev\/video\d{1,3}$/, 'must be /dev/videoN'),
  /** Capture format asked of the driver, e.g. mjpeg or yuyv422. */
  inputFormat: z
    .string()
    .regex(/^[a-z0-9_]{1,32}$/)
    .optional(),
  /** Capture size asked of the driver, e.g. 1280x720. */
  captureSize: z
    .string()
    .regex(/^\d{2,5}x\d{2,5}$/)
    .optional(),
  captureFps: z.number().positive().max(240).optional(),
  ...cameraCommon,
});

export const mjpegSourceSchema = z.strictObject({
  kind: z.literal('mjpeg'),
  /** An HTTP multipart/x-mixed-replace MJPEG stream. */
  url: urlWith(['http:', 'https:']),
  ...cameraCommon,
});

export const folderSourceSchema = z.strictObject({
  kind: z.literal('folder'),
  id: z.string().max(64).optional(),
  path: pathSchema,
  /** Lower-case extensions with the dot. */
  extensions: z
    .array(z.string().regex(/^\.[a-z0-9]{1,8}$/))
    .min(1)
    .max(16)
    .default(['.jpg', '.jpeg', '.png', '.webp']),
  /** Periodic full rescan, in case fs.watch missed something (network filesystems, overflow). */
  rescanMs: z.number().int().min(50).max(3_600_000).default(2_000),
  /** A file is read once its size and mtime have not changed for this long. */
  stableMs: z.number().int().min(0).max(600_000).default(500),
  /** Also emit files already there at start (default: only new files). */
  includeExisting: z.boolean().default(false),
  maxBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(32 * 1024 * 1024),
});

export const snapshotUrlSourceSchema = z.strictObject({
  kind: z.literal('snapshot-url'),
  id: z.string().max(64).optional(),
  url: urlWith(['http:', 'https:']),
  intervalMs: z.number().int().min(50).max(86_400_000).default(1_000),
  timeoutMs: z.number().int().min(50).max(600_000).default(5_000),
  maxBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(16 * 1024 * 1024),
  /** Extra request headers (e.g. Authorization for the camera). */
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().max(4096)).optional(),
  /** Content types accepted (parameters such as charset are ignored). */
  contentTypes: z
    .array(z.string().regex(/^[a-z]+\/[a-z0-9.+-]+$/))
    .min(1)
    .default(['image/jpeg', 'image/png', 'image/webp']),
  /** Delay after failures grows from intervalMs with this backoff. */
  backoff: backoffSchema.optional(),
});

const audioInputSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('file'),
    path: pathSchema,
    realtime: z.boolean().default(true),
    loop: z.boolean().default(false),
  }),
  z.strictObject({ type: z.literal('lavfi'), graph: z.string().min(1).max(1024) }),
  z.strictObject({
    type: z.literal('alsa'),
    device: z
      .string()
      .regex(/^[A-Za-z0-9:,=_.-]{1,64}$/)
      .default('default'),
  }),
]);

export const audioSourceSchema = z
  .strictObject({
    kind: z.literal('audio'),
    id: z.string().max(64).optional(),
    input: audioInputSchema,
    sampleRate: z.number().int().min(8_000).max(48_000).default(16_000),
    /** Samples per window (Silero VAD: 512 at 16 kHz). */
    window: z.number().int().min(1).max(1_048_576).default(512),
    /** Samples between window starts; default = window (no overlap). */
    hop: z.number().int().min(1).max(1_048_576).optional(),
    /** Windows kept for the consumer before the oldest is dropped. */
    queue: z.number().int().min(1).max(4096).default(64),
    stallTimeoutMs: z.number().int().min(0).max(600_000).default(20_000),
    backoff: backoffSchema.optional(),
  })
  .transform((v) => ({ ...v, hop: v.hop ?? v.window }));

function validTopicFilter(filter: string): boolean {
  if (filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every(
    (level, i) =>
      (level === '#' && i === levels.length - 1) ||
      level === '+' ||
      (!level.includes('#') && !level.includes('+')),
  );
}

const sensorCommon = {
  id: z.string().max(64).optional(),
  /** Readings per window. */
  window: z.number().int().min(1).max(1_048_576).default(32),
  /** Readings between window starts; default = window. */
  hop: z.number().int().min(1).max(1_048_576).optional(),
  /** For JSON object lines: the numeric fields taken, in order, as channels (dotted paths allowed). */
  fields: z
    .array(z.string().regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/))
    .min(1)
    .max(256)
    .optional(),
  /** Values per reading when `fields` is absent (numbers separated by commas/spaces, or a JSON array). */
  channels: z.number().int().min(1).max(256).optional(),
  maxLineBytes: z
    .number()
    .int()
    .min(16)
    .max(1024 * 1024)
    .default(64 * 1024),
  queue: z.number().int().min(1).max(4096).default(64),
};

function withSensorDefaults<
  T extends {
    window: number;
    hop?: number | undefined;
    fields?: string[] | undefined;
    channels?: number | undefined;
  },
>(v: T): Omit<T, 'hop' | 'channels'> & { hop: number; channels: number } {
  return { ...v, hop: v.hop ?? v.window, channels: v.fields?.length ?? v.channels ?? 1 };
}

function fieldsMatchChannels(
  v: { fields?: string[] | undefined; channels?: number | undefined },
  ctx: z.RefinementCtx,
): void {
  if (v.fields && v.channels !== undefined && v.channels !== v.fields.length) {
    ctx.addIssue({ code: 'custom', path: ['channels'], message: 'channels must equal the number of fields' });
  }
}

export const sensorCommandSourceSchema = z
  .strictObject({
    kind: z.literal('sensor-command'),
    /** argv: the program and its arguments; never run through a shell. */
    command: z.array(z.string().min(1).max(4096)).min(1).max(64),
    /** What to do when the command exits: restart it with backoff, or end the source. */
    onExit: z.enum(['restart', 'end']).default('restart'),
    stallTimeoutMs: z.number().int().min(0).max(86_400_000).default(0),
    backoff: backoffSchema.optional(),
    ...sensorCommon,
  })
  .superRefine(fieldsMatchChannels)
  .transform(withSensorDefaults);

export const sensorFileSourceSchema = z
  .strictObject({
    kind: z.literal('sensor-file'),
    path: pathSchema,
    /** Read what is already in the file first (default: only what is appended, like tail -f). */
    fromStart: z.boolean().default(false),
    pollMs: z.number().int().min(10).max(600_000).default(500),
    ...sensorCommon,
  })
  .superRefine(fieldsMatchChannels)
  .transform(withSensorDefaults);

export const sensorMqttSourceSchema = z
  .strictObject({
    kind: z.literal('sensor-mqtt'),
    /** Topic filter; + and # allowed. */
    topic: z
      .string()
      .min(1)
      .max(1024)
      .refine(validTopicFilter, 'must be an MQTT topic filter: no NUL, + and # only as whole levels, # last'),
    qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(0),
    /**
     * The broker the sensor publishes to; the source opens its own connection there. Required in
     * perch-agent: the device's own MQTT login may subscribe only to its desired state and commands.
     */
    url: z
      .url({ protocol: /^(mqtts?|wss?)$/ })
      .max(2048)
      .optional(),
    username: z.string().min(1).max(256).optional(),
    password: z.string().min(1).max(1024).optional(),
    ...sensorCommon,
  })
  .superRefine(fieldsMatchChannels)
  .superRefine((v, ctx) => {
    if (v.url === undefined && (v.username !== undefined || v.password !== undefined))
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'username and password need a url' });
  })
  .transform(withSensorDefaults);

export const sourceConfigSchema = z.discriminatedUnion('kind', [
  lavfiSourceSchema.superRefine(requireRawSize),
  fileSourceSchema.superRefine(requireRawSize),
  rtspSourceSchema.superRefine(requireRawSize),
  v4l2SourceSchema.superRefine(requireRawSize),
  mjpegSourceSchema.superRefine(requireRawSize),
  folderSourceSchema,
  snapshotUrlSourceSchema,
  audioSourceSchema,
  sensorCommandSourceSchema,
  sensorFileSourceSchema,
  sensorMqttSourceSchema,
]);

export const SOURCE_KINDS = [
  'lavfi',
  'file',
  'rtsp',
  'v4l2',
  'mjpeg',
  'folder',
  'snapshot-url',
  'audio',
  'sensor-command',
  'sensor-file',
  'sensor-mqtt',
] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** What a source config is written as (defaults may be left out). */
export type SourceConfigInput = z.input<typeof sourceConfigSchema>;
/** A validated source config with defaults filled in. */
export type SourceConfig = z.output<typeof sourceConfigSchema>;
export type CameraSourceConfig = Extract<
  SourceConfig,
  { kind: 'lavfi' | 'file' | 'rtsp' | 'v4l2' | 'mjpeg' }
>;
export type FolderSourceConfig = Extract<SourceConfig, { kind: 'folder' }>;
export type SnapshotUrlSourceConfig = Extract<SourceConfig, { kind: 'snapshot-url' }>;
export type AudioSourceConfig = Extract<SourceConfig, { kind: 'audio' }>;
export type SensorSourceConfig = Extract<
  SourceConfig,
  { kind: 'sensor-command' | 'sensor-file' | 'sensor-mqtt' }
>;
export type BackoffConfig = z.output<typeof backoffSchema>;

/**
 * Validates a source config (all issues at once, each with its path) and returns it with defaults filled
 * in, frozen. Throws E_CONFIG_INVALID.
 */
// Here rather than in create-source.ts: checking a config must not load the sources (sharp, ffmpeg
// supervision), which the agent's idle footprint would pay for.
export function parseSourceConfig(value: unknown): SourceConfig {
  const parsed = sourceConfigSchema.safeParse(value);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error).map((i) => `source.${i}`);
    throw new PerchError('E_CONFIG_INVALID', `invalid source config: ${issues.join('; ')}`, { issues });
  }
  return Object.freeze(parsed.data);
}
