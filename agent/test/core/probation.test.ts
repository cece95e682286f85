import fs from 'node:fs';
import { PerchError } from '@perch/shared';
import { fixturePath } from '../../../test/helpers/fixtures';
import type { LoadedModel } from '../../src/core/model-store';
import { OnnxProbation } from '../../src/core/probation';
import { throwingModel } from '../pipeline/helpers/onnx-builder';
import { silentLogger } from './helpers';

jest.setTimeout(60_000);

const BLAZEFACE_SPEC = {
  input: { kind: 'image', name: 'input:0', layout: 'NHWC', width: 128, height: 128 },
  postprocessor: { kind: 'blazeface', params: {} },
};

function loaded(model: Uint8Array, spec: unknown, sample?: Buffer): LoadedModel {
  return {
    name: 'm',
    ref: { sha256: '0'.repeat(64), version: '1', securityVersion: 0 },
    files: {
      model: Buffer.from(model),
      spec: Buffer.from(JSON.stringify(spec)),
      labels: Buffer.from('face\n'),
      ...(sample ? { sample } : {}),
    },
  };
}

async function failureOf(p: Promise<unknown>): Promise<PerchError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PerchError);
  return err as PerchError;
}

describe('probation self-test on the bundle sample', () => {
  const probation = new OnnxProbation({ warmupRuns: 1, trialRuns: 1 }, silentLogger());
  const blazeface = fs.readFileSync(fixturePath('blazeface.onnx'));

  it('runs a sample that fits the spec input as the self-test', async () => {
    const report = await probation.run(loaded(blazeface, BLAZEFACE_SPEC, Buffer.alloc(128 * 128 * 3 * 4)));
    expect(report.sampleUsed).toBe(true);
  });

  it('fails the probation on a sample whose size does not fit, naming expected and actual bytes', async () => {
    const err = await failureOf(probation.run(loaded(blazeface, BLAZEFACE_SPEC, Buffer.alloc(8))));
    expect(err.code).toBe('E_UPDATE_PROBATION_FAILED');
    expect(err.message).toBe(
      'probation failed at self-test: sample.bin is 8 bytes; input "input:0" float32 [1, 128, 128, 3] needs 196608 bytes',
    );
  });

  it("reads a tensor sample in the spec's shape, a -1 taking the model's fixed dim", async () => {
    // Any value of 3 or more makes this model throw: a sample of 2s passes, one of 5s fails in self-test.
    const model = throwingModel({ name: 'x', shape: ['n', 4], type: 'uint8' });
    const spec = {
      input: { kind: 'tensor', name: 'x', shape: [2, -1], dtype: 'uint8' },
      postprocessor: { kind: 'raw', params: {} },
    };
    expect((await probation.run(loaded(model, spec, Buffer.alloc(8, 2)))).sampleUsed).toBe(true);
    const wrong = await failureOf(probation.run(loaded(model, spec, Buffer.alloc(4, 2))));
    expect(wrong.message).toMatch(/sample\.bin is 4 bytes; input "x" uint8 \[2, 4\] needs 8 bytes/);
    const throws = await failureOf(probation.run(loaded(model, spec, Buffer.alloc(8, 5))));
    expect(throws.message).toMatch(/^probation failed at self-test: .*indices/i);
  });
});
