import './helpers/ort-realm';
import { modelSpecSchema, type ModelSpecInput } from '@perch/shared';
import { LoadedModel } from '../../src/pipeline/inference/model';
import { providerOrder } from '../../src/pipeline/inference/session';
import { checkSpecAgainstModel, parseSpec } from '../../src/pipeline/spec';
import { constantOutputModel } from './helpers/onnx-builder';

const base: ModelSpecInput = {
  input: { kind: 'image', name: 'images', layout: 'NCHW', width: 32, height: 32 },
  postprocessor: { kind: 'raw' },
};
const model = constantOutputModel({
  input: { name: 'images', shape: [1, 3, 32, 32] },
  outputName: 'out',
  dims: [1, 2],
  values: [1, 2],
});
const bundle = (spec: unknown) => ({ name: 'm', version: '1', model, spec });

describe('model spec', () => {
  it('fills defaults and lists every invalid path at once', () => {
    const ok = modelSpecSchema.parse(base);
    expect(ok.input).toMatchObject({
      colour: 'RGB',
      dtype: 'float32',
      resize: 'stretch',
      normalisation: { kind: 'none' },
    });
    try {
      parseSpec({
        input: { kind: 'image', name: '', layout: 'CHW', width: -1, height: 32 },
        postprocessor: { kind: 'nope' },
      });
      throw new Error('expected a throw');
    } catch (err) {
      expect(err).toMatchObject({ code: 'E_PIPELINE_SPEC_INVALID' });
      const paths = (err as { details: { issues: { path: string }[] } }).details.issues.map((i) => i.path);
      expect(paths).toEqual(
        expect.arrayContaining(['input.name', 'input.layout', 'input.width', 'postprocessor.kind']),
      );
    }
  });

  it('takes labels from the spec before the bundle', () => {
    expect(parseSpec({ ...base, labels: ['a'] }, ['b']).labels).toEqual(['a']);
    expect(parseSpec(base, ['b']).labels).toEqual(['b']);
  });
});

describe('spec against the model', () => {
  it('loads a matching spec and reports the provider actually used, falling back to CPU', async () => {
    const m = await LoadedModel.load(bundle(base), { executionProviders: ['cuda'] });
    expect(m.provider).toBe('cpu');
    expect(m.fallbacks.map((f) => f.provider)).toEqual(['cuda']);
    await m.release();
  });

  it('refuses an input tensor name that is not in the model', async () => {
    const spec = { ...base, input: { ...base.input, name: 'input:0' } };
    await expect(LoadedModel.load(bundle(spec))).rejects.toMatchObject({
      code: 'E_PIPELINE_SPEC_MISMATCH',
      message: expect.stringContaining('input:0') as string,
    });
  });

  it('refuses an output tensor name that is not in the model', async () => {
    const spec = { ...base, postprocessor: { kind: 'classification', params: { output: 'logits' } } };
    await expect(LoadedModel.load(bundle(spec))).rejects.toMatchObject({ code: 'E_PIPELINE_SPEC_MISMATCH' });
  });

  it('refuses the wrong layout and says which one the model looks like', async () => {
    const spec = { ...base, input: { ...base.input, layout: 'NHWC' } };
    await expect(LoadedModel.load(bundle(spec))).rejects.toMatchObject({
      code: 'E_PIPELINE_SPEC_MISMATCH',
      message: expect.stringContaining('looks NCHW') as string,
    });
  });

  it('refuses a size that differs from the model input', async () => {
    const spec = { ...base, input: { ...base.input, width: 64 } };
    await expect(LoadedModel.load(bundle(spec))).rejects.toMatchObject({ code: 'E_PIPELINE_SPEC_MISMATCH' });
  });

  it('refuses a dtype that differs from the model input', async () => {
    const spec = { ...base, input: { ...base.input, dtype: 'uint8' } };
    await expect(LoadedModel.load(bundle(spec))).rejects.toMatchObject({ code: 'E_PIPELINE_SPEC_MISMATCH' });
  });

  it('gives E_PIPELINE_MODEL_LOAD for bytes that are not a model', async () => {
    await expect(LoadedModel.load({ ...bundle(base), model: Buffer.from('not onnx') })).rejects.toMatchObject(
      { code: 'E_PIPELINE_MODEL_LOAD' },
    );
  });

  it('lets symbolic dimensions through', () => {
    const spec = modelSpecSchema.parse(base);
    expect(() =>
      checkSpecAgainstModel(
        spec,
        [{ name: 'images', isTensor: true, type: 'float32', shape: ['n', 3, 'h', 'w'] }],
        [],
      ),
    ).not.toThrow();
  });

  it('orders execution providers with CPU last and no duplicates', () => {
    expect(providerOrder(['TensorRT', 'cuda', 'cpu', 'cuda'])).toEqual(['tensorrt', 'cuda', 'cpu']);
    expect(providerOrder(undefined)).toEqual(['cpu']);
  });
});
