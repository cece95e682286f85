import { modelSpecSchema, PerchError, specTensorNames, type ModelSpec } from '@perch/shared';

/** What the spec check needs to know of a model's inputs and outputs (onnxruntime's ValueMetadata). */
export interface TensorMeta {
  readonly name: string;
  readonly isTensor: boolean;
  readonly type?: string;
  readonly shape?: ReadonlyArray<number | string>;
}

export interface ParsedSpec {
  readonly spec: ModelSpec;
  readonly labels: readonly string[];
}

/** Validate a bundle's spec.json content; every failing path is listed in the error. */
export function parseSpec(raw: unknown, bundleLabels?: readonly string[]): ParsedSpec {
  const r = modelSpecSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new PerchError(
      'E_PIPELINE_SPEC_INVALID',
      `model spec is invalid: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
      { issues },
    );
  }
  return { spec: r.data, labels: r.data.labels ?? bundleLabels ?? [] };
}

function mismatch(message: string, details: Record<string, unknown>): PerchError {
  return new PerchError('E_PIPELINE_SPEC_MISMATCH', message, details);
}

const known = (d: number | string | undefined): d is number => typeof d === 'number' && d > 0;

/**
 * The spec against the model's own description: names exist, the image input has rank 4 with 3 channels where
 * the layout says, the fixed sizes agree and the element type matches. Symbolic (dynamic) dimensions pass.
 */
export function checkSpecAgainstModel(
  spec: ModelSpec,
  inputs: readonly TensorMeta[],
  outputs: readonly TensorMeta[],
): void {
  const names = specTensorNames(spec);
  const inputNames = inputs.map((i) => i.name);
  const outputNames = outputs.map((o) => o.name);
  for (const n of names.inputs) {
    if (!inputNames.includes(n)) {
      throw mismatch(`input tensor "${n}" is not in the model (it has ${inputNames.join(', ')})`, {
        expected: n,
        modelInputs: inputNames,
      });
    }
  }
  for (const n of names.outputs) {
    if (!outputNames.includes(n)) {
      throw mismatch(`output tensor "${n}" is not in the model (it has ${outputNames.join(', ')})`, {
        expected: n,
        modelOutputs: outputNames,
      });
    }
  }
  const meta = inputs.find((i) => i.name === spec.input.name);
  if (!meta?.isTensor || !meta.shape) return;
  const shape = meta.shape;
  const input = spec.input;
  const details = { input: input.name, modelShape: shape, modelType: meta.type };
  if (input.kind === 'image') {
    if (shape.length !== 4)
      throw mismatch(`image input "${input.name}" has rank ${shape.length}, expected 4`, details);
    const [, d1, d2, d3] = shape;
    const nchw = input.layout === 'NCHW';
    const [c, h, w] = nchw ? [d1, d2, d3] : [d3, d1, d2];
    if (known(c) && c !== 3) {
      const other = nchw ? d3 : d1;
      const hint = other === 3 ? ` (the model looks ${nchw ? 'NHWC' : 'NCHW'})` : '';
      throw mismatch(
        `layout ${input.layout} puts ${c} channels on the channel axis, expected 3${hint}`,
        details,
      );
    }
    if ((known(h) && h !== input.height) || (known(w) && w !== input.width)) {
      throw mismatch(
        `spec size ${input.width}x${input.height} does not match the model's ${String(w)}x${String(h)}`,
        details,
      );
    }
    if (meta.type && meta.type !== input.dtype) {
      throw mismatch(`spec dtype ${input.dtype} does not match the model's ${meta.type}`, details);
    }
  } else if (input.kind === 'audio') {
    const last = shape[shape.length - 1];
    if (known(last) && last !== input.windowSamples) {
      throw mismatch(`spec window ${input.windowSamples} does not match the model's ${last}`, details);
    }
  } else {
    if (shape.length !== input.shape.length) {
      throw mismatch(
        `spec shape [${input.shape.join(',')}] has rank ${input.shape.length}, the model ${shape.length}`,
        details,
      );
    }
    if (meta.type && meta.type !== input.dtype) {
      throw mismatch(`spec dtype ${input.dtype} does not match the model's ${meta.type}`, details);
    }
  }
}
