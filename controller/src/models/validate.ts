import * as ort from 'onnxruntime-node';
import {
  modelSpecSchema,
  PerchError,
  safeJsonParse,
  specTensorNames,
  validate,
  type ModelSpec,
} from '@perch/shared';
import { checkSample } from './sample-check';

export interface ModelIo {
  inputs: Array<{ name: string; type?: string; shape: ReadonlyArray<number | string> }>;
  outputs: string[];
}

async function openSession(model: Buffer): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(model, {
      logSeverityLevel: 3,
      graphOptimizationLevel: 'disabled',
    });
  } catch {
    throw new PerchError('E_MODEL_NOT_ONNX', 'onnxruntime cannot load model.onnx');
  }
}

function ioOf(session: ort.InferenceSession): ModelIo {
  const inputs = session.inputMetadata.map((m) => ({
    name: m.name,
    ...(m.isTensor ? { type: m.type, shape: m.shape } : { shape: [] as number[] }),
  }));
  return { inputs, outputs: [...session.outputNames] };
}

/** Loads the model with onnxruntime (the real check that it is ONNX it can run) and reads its inputs. */
export async function inspectOnnx(model: Buffer): Promise<ModelIo> {
  const session = await openSession(model);
  try {
    return ioOf(session);
  } finally {
    await session.release();
  }
}

export function parseSpec(data: Buffer): ModelSpec {
  const parsed = safeJsonParse(data, { maxBytes: 256 * 1024 });
  if (!parsed.ok) throw new PerchError('E_MODEL_SPEC_INVALID', `spec.json: ${parsed.error.message}`);
  const checked = validate(modelSpecSchema, parsed.value, 'spec.json');
  if (!checked.ok) throw new PerchError('E_MODEL_SPEC_INVALID', checked.error.message, checked.error.details);
  return checked.value;
}

const dimOk = (dim: number | string | undefined, want: number) =>
  typeof dim !== 'number' || dim <= 0 || dim === want;

/** Lists every way the spec disagrees with the model; empty when they match. */
export function specMismatches(spec: ModelSpec, io: ModelIo): string[] {
  const problems: string[] = [];
  const names = specTensorNames(spec);
  for (const n of names.inputs) {
    if (!io.inputs.some((i) => i.name === n))
      problems.push(
        `input ${JSON.stringify(n)} is not an input of the model (has ${io.inputs.map((i) => i.name).join(', ')})`,
      );
  }
  for (const n of names.outputs) {
    if (!io.outputs.includes(n))
      problems.push(
        `output ${JSON.stringify(n)} is not an output of the model (has ${io.outputs.join(', ')})`,
      );
  }
  const input = io.inputs.find((i) => i.name === spec.input.name);
  if (input && spec.input.kind === 'image') {
    const s = input.shape;
    if (s.length !== 4) problems.push(`image input has rank ${s.length}, expected 4`);
    else {
      const [, a, b, c] = s;
      const [h, w, ch] = spec.input.layout === 'NHWC' ? [a, b, c] : [b, c, a];
      if (!dimOk(h, spec.input.height))
        problems.push(`input height is ${String(h)}, spec says ${spec.input.height} (${spec.input.layout})`);
      if (!dimOk(w, spec.input.width))
        problems.push(`input width is ${String(w)}, spec says ${spec.input.width} (${spec.input.layout})`);
      if (typeof ch === 'number' && ch > 0 && ch !== 3 && ch !== 1)
        problems.push(`input has ${ch} channels in the ${spec.input.layout} position, expected 1 or 3`);
    }
    if (input.type !== undefined && input.type !== spec.input.dtype)
      problems.push(`input type is ${input.type}, spec says ${spec.input.dtype}`);
  }
  if (input && spec.input.kind === 'tensor') {
    const s = input.shape;
    if (s.length !== spec.input.shape.length)
      problems.push(`input rank is ${s.length}, spec shape has ${spec.input.shape.length}`);
    else
      spec.input.shape.forEach((d, i) => {
        if (d > 0 && !dimOk(s[i], d)) problems.push(`input dim ${i} is ${String(s[i])}, spec says ${d}`);
      });
  }
  return problems;
}

/**
 * The upload check: the spec parses, onnxruntime loads the model, the spec matches it, and the sample
 * (when given) fits the spec's input and runs (see `checkSample`). One session serves all of it.
 */
export async function validateBundle(
  model: Buffer,
  specData: Buffer,
  sample?: Buffer,
): Promise<{ spec: ModelSpec; io: ModelIo }> {
  const spec = parseSpec(specData);
  const session = await openSession(model);
  try {
    const io = ioOf(session);
    const problems = specMismatches(spec, io);
    if (problems.length > 0) {
      throw new PerchError('E_MODEL_SPEC_MISMATCH', `spec does not match the model: ${problems[0] ?? ''}`, {
        problems,
      });
    }
    if (sample) await checkSample(session, spec, io, sample);
    return { spec, io };
  } finally {
    await session.release();
  }
}
