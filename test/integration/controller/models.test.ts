import '../../../agent/test/pipeline/helpers/ort-realm';
import fs from 'node:fs';
import { readTar } from '@perch/controller';
import { fixturePath } from '../../helpers/fixtures';
import { throwingModel } from '../../../agent/test/pipeline/helpers/onnx-builder';
import { api, BLAZEFACE_SPEC, enroll, startHarness, uploadBundle, type Harness } from './harness';

jest.setTimeout(60_000);

/** `n` little-endian float32 values, all `value`: a sample.bin for a float32 input. */
function floats(n: number, value: number): Buffer {
  const b = Buffer.alloc(n * 4);
  for (let i = 0; i < b.length; i += 4) b.writeFloatLE(value, i);
  return b;
}

describe('model bundle upload', () => {
  let h: Harness;
  let model: Buffer;
  beforeAll(async () => {
    h = await startHarness({ limits: { modelBytes: 2 * 1024 * 1024, sideFileBytes: 256 * 1024 } });
    model = fs.readFileSync(fixturePath('blazeface.onnx'));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('accepts the BlazeFace bundle, stores it as one signed tar target, and serves it back', async () => {
    const res = await uploadBundle(h, 'blazeface', '1.0.0', {
      model,
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'face\n',
      sample: floats(128 * 128 * 3, 0.5),
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      model: 'blazeface',
      version: '1.0.0',
      securityVersion: 0,
      target: 'models/blazeface/1.0.0/bundle.tar',
    });
    const dl = await fetch(`${h.ctl.url}/api/v1/models/blazeface/versions/1.0.0/bundle`, {
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    expect(dl.status).toBe(200);
    const tar = Buffer.from(await dl.arrayBuffer());
    const entries = readTar(tar);
    expect(entries.map((e) => e.name)).toEqual(['model.onnx', 'spec.json', 'labels.txt', 'sample.bin']);
    expect(entries[0]?.data.equals(model)).toBe(true);
    const list = await api<{ models: Array<{ name: string; versions: string[] }> }>(
      h,
      'GET',
      '/api/v1/models',
      h.adminToken,
    );
    expect(list.body.models).toEqual([expect.objectContaining({ name: 'blazeface', versions: ['1.0.0'] })]);
  });

  it('keeps versions immutable and security versions monotonic', async () => {
    const again = await uploadBundle(h, 'blazeface', '1.0.0', {
      model,
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'face\n',
    });
    expect(again.body.error?.code).toBe('E_CONFLICT');
    const up = await uploadBundle(h, 'blazeface', '1.1.0', {
      model,
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'face\n',
      securityVersion: 3,
    });
    expect(up.status).toBe(201);
    const down = await uploadBundle(h, 'blazeface', '1.2.0', {
      model,
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'face\n',
      securityVersion: 2,
    });
    expect(down.body.error?.code).toBe('E_MODEL_SECURITY_VERSION');
    const inherit = await uploadBundle(h, 'blazeface', '1.3.0', {
      model,
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'face\n',
    });
    expect(inherit.body.securityVersion).toBe(3);
  });

  it.each([
    [
      'a spec whose input name is not the model input',
      { ...BLAZEFACE_SPEC, input: { ...BLAZEFACE_SPEC.input, name: 'image' } },
      'E_MODEL_SPEC_MISMATCH',
    ],
    [
      'a spec with the wrong layout (NCHW)',
      { ...BLAZEFACE_SPEC, input: { ...BLAZEFACE_SPEC.input, layout: 'NCHW' } },
      'E_MODEL_SPEC_MISMATCH',
    ],
    [
      'a spec with the wrong size',
      { ...BLAZEFACE_SPEC, input: { ...BLAZEFACE_SPEC.input, width: 256, height: 256 } },
      'E_MODEL_SPEC_MISMATCH',
    ],
    [
      'a spec naming outputs the model lacks',
      { ...BLAZEFACE_SPEC, postprocessor: { kind: 'yolo', params: { version: 'v8', output: 'output0' } } },
      'E_MODEL_SPEC_MISMATCH',
    ],
    ['a spec that is not a spec', { hello: 'world' }, 'E_MODEL_SPEC_INVALID'],
  ])('refuses %s', async (_what, spec, code) => {
    const res = await uploadBundle(h, 'bad-spec', '1', {
      model,
      spec: JSON.stringify(spec),
      labels: 'face\n',
    });
    expect(res.status).toBe(422);
    expect(res.body.error?.code).toBe(code);
  });

  it('refuses a file that is not ONNX with E_MODEL_NOT_ONNX', async () => {
    const res = await uploadBundle(h, 'not-onnx', '1', {
      model: Buffer.from('this is not a model at all'),
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'x\n',
    });
    expect(res.status).toBe(422);
    expect(res.body.error?.code).toBe('E_MODEL_NOT_ONNX');
  });

  it('refuses an oversized model or side file with E_MODEL_TOO_LARGE and stores nothing', async () => {
    const res = await uploadBundle(h, 'huge', '1', {
      model: Buffer.alloc(3 * 1024 * 1024, 7),
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'x\n',
    });
    expect(res.status).toBe(413);
    expect(res.body.error?.code).toBe('E_MODEL_TOO_LARGE');
    const side = await uploadBundle(h, 'huge', '1', {
      model,
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'x'.repeat(300 * 1024),
    });
    expect(side.status).toBe(413);
    expect(side.body.error?.code).toBe('E_MODEL_TOO_LARGE');
    const got = await api(h, 'GET', '/api/v1/models/huge', h.adminToken);
    expect(got.status).toBe(404);
  });

  it('refuses incomplete bundles and unknown parts with E_MODEL_BUNDLE_INCOMPLETE', async () => {
    const missing = await uploadBundle(h, 'partial', '1', { model, spec: JSON.stringify(BLAZEFACE_SPEC) });
    expect(missing.body.error?.code).toBe('E_MODEL_BUNDLE_INCOMPLETE');
    const extra = await uploadBundle(h, 'partial', '1', {
      model,
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'x',
      extra: { evil: 'x' },
    });
    expect(extra.body.error?.code).toBe('E_MODEL_BUNDLE_INCOMPLETE');
  });

  describe('sample input', () => {
    const upload = (version: string, parts: { sample: Buffer; model?: Buffer; spec?: unknown }) =>
      uploadBundle(h, 'sampled', version, {
        model: parts.model ?? model,
        spec: JSON.stringify(parts.spec ?? BLAZEFACE_SPEC),
        labels: 'face\n',
        sample: parts.sample,
      });

    it('refuses a sample whose size does not fit the input with E_MODEL_SAMPLE_INVALID and stores nothing', async () => {
      // An 8-byte sample, and one float short of the 128 x 128 x 3 float32 input.
      for (const [version, sample] of [
        ['short', Buffer.alloc(8)],
        ['one-short', floats(128 * 128 * 3 - 1, 0)],
      ] as const) {
        const res = await upload(version, { sample });
        expect(res.status).toBe(422);
        expect(res.body.error?.code).toBe('E_MODEL_SAMPLE_INVALID');
        expect(res.body.error?.message).toContain(`sample is ${sample.length} bytes`);
        expect(res.body.error?.message).toContain('[1, 128, 128, 3] needs 196608 bytes');
      }
      expect((await api(h, 'GET', '/api/v1/models/sampled', h.adminToken)).status).toBe(404);
    });

    it('reads the sample in the spec layout and dtype: NCHW uint8 needs 3 x H x W bytes', async () => {
      // The throwing model takes any shape; 2 (all bytes) stays below its failing index of 3.
      const nchw = Buffer.from(throwingModel({ name: 'x', shape: [1, 3, 4, 6], type: 'uint8' }));
      const spec = {
        schemaVersion: 1,
        input: { kind: 'image', name: 'x', layout: 'NCHW', width: 6, height: 4, dtype: 'uint8' },
        postprocessor: { kind: 'raw', params: {} },
      };
      const wrong = await upload('nchw-wrong', { model: nchw, spec, sample: Buffer.alloc(4 * 6 * 3 * 4, 2) });
      expect(wrong.body.error?.code).toBe('E_MODEL_SAMPLE_INVALID');
      expect(wrong.body.error?.message).toContain('uint8 [1, 3, 4, 6] needs 72 bytes');
      const right = await upload('nchw-right', { model: nchw, spec, sample: Buffer.alloc(72, 2) });
      expect(right.status).toBe(201);
    });

    it('refuses a sample on which the model gives non-finite outputs (NaN everywhere)', async () => {
      const res = await upload('nan', { sample: floats(128 * 128 * 3, Number.NaN) });
      expect(res.status).toBe(422);
      expect(res.body.error?.code).toBe('E_MODEL_SAMPLE_INVALID');
      expect(res.body.error?.message).toMatch(/non-finite value in output/);
    });

    it('refuses a sample on which onnxruntime throws, and names the inference error', async () => {
      const throwing = Buffer.from(throwingModel({ name: 'input:0', shape: [1, 128, 128, 3] }));
      const spec = { ...BLAZEFACE_SPEC, postprocessor: { kind: 'raw', params: {} } };
      const fine = await upload('throws-not', { model: throwing, spec, sample: floats(128 * 128 * 3, 1) });
      expect(fine.status).toBe(201);
      const res = await upload('throws', { model: throwing, spec, sample: floats(128 * 128 * 3, 10) });
      expect(res.status).toBe(422);
      expect(res.body.error?.code).toBe('E_MODEL_SAMPLE_INVALID');
      expect(res.body.error?.message).toMatch(/inference on the sample fails: .*indices/i);
    });
  });

  it('pins desired models to the signed bundle target', async () => {
    const { deviceId } = await enroll(h);
    const res = await api<{ desired: { models: Array<Record<string, unknown>> } }>(
      h,
      'PUT',
      `/api/v1/devices/${deviceId}/desired`,
      h.adminToken,
      {
        models: [{ name: 'blazeface', version: '1.0.0' }],
        pipelines: [],
      },
    );
    expect(res.status).toBe(200);
    expect(res.body.desired.models[0]).toMatchObject({
      name: 'blazeface',
      version: '1.0.0',
      target: 'models/blazeface/1.0.0/bundle.tar',
      securityVersion: 0,
    });
    const missing = await api(h, 'PUT', `/api/v1/devices/${deviceId}/desired`, h.adminToken, {
      models: [{ name: 'nope', version: '1' }],
      pipelines: [],
    });
    expect(missing.status).toBe(404);
  });
});
