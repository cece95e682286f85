/**
 * Small ONNX models built in the test with onnx-proto, so postprocessors and the runner are tested against
 * onnxruntime with outputs the test knows exactly.
 */
import { onnx } from 'onnx-proto';

type ElemType = 'float32' | 'uint8' | 'int64';
const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int64: onnx.TensorProto.DataType.INT64,
};

export interface ValueSpec {
  readonly name: string;
  readonly type?: ElemType;
  /** Numbers are fixed dimensions, strings symbolic ones. */
  readonly shape: readonly (number | string)[];
}

function valueInfo(v: ValueSpec): onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ELEM[v.type ?? 'float32'],
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export function floatTensor(
  name: string,
  dims: readonly number[],
  values: ArrayLike<number>,
): onnx.ITensorProto {
  return { name, dims: [...dims], dataType: ELEM.float32, floatData: Array.from(values) };
}

export function int64Tensor(
  name: string,
  dims: readonly number[],
  values: readonly number[],
): onnx.ITensorProto {
  return { name, dims: [...dims], dataType: ELEM.int64, int64Data: [...values] };
}

export interface NodeSpec {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs?: Record<string, number | number[] | onnx.ITensorProto>;
}

function attribute(name: string, v: number | number[] | onnx.ITensorProto): onnx.IAttributeProto {
  if (typeof v === 'number') return { name, type: onnx.AttributeProto.AttributeType.INT, i: v };
  if (Array.isArray(v)) return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v };
  return { name, type: onnx.AttributeProto.AttributeType.TENSOR, t: v };
}

export function buildModel(opts: {
  inputs: readonly ValueSpec[];
  outputs: readonly ValueSpec[];
  nodes: readonly NodeSpec[];
  initializers?: readonly onnx.ITensorProto[];
  opset?: number;
}): Uint8Array {
  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'perch-test',
    opsetImport: [{ domain: '', version: opts.opset ?? 13 }],
    graph: {
      name: 'g',
      input: opts.inputs.map(valueInfo),
      output: opts.outputs.map(valueInfo),
      initializer: [...(opts.initializers ?? [])],
      node: opts.nodes.map((n, i) => ({
        name: `n${i}`,
        opType: n.op,
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      })),
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

/** An image model (input `images`) whose single output is always the given tensor. */
export function constantOutputModel(opts: {
  input: ValueSpec;
  outputName: string;
  dims: readonly number[];
  values: ArrayLike<number>;
}): Uint8Array {
  return buildModel({
    inputs: [opts.input],
    outputs: [{ name: opts.outputName, shape: opts.dims }],
    nodes: [
      {
        op: 'Constant',
        inputs: [],
        outputs: [opts.outputName],
        attrs: { value: floatTensor('c', opts.dims, opts.values) },
      },
    ],
  });
}

/** A model that passes its input through: output `y` = input `x`. */
export function identityModel(shape: readonly (number | string)[], type: ElemType = 'float32'): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', shape, type }],
    outputs: [{ name: 'y', shape, type }],
    nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
  });
}

/**
 * An image model that fails inside onnxruntime whenever the brightest input value is 3 or more (a Gather with
 * an index out of range), and answers a single float otherwise: black frames pass, anything else throws.
 */
export function throwingModel(input: ValueSpec): Uint8Array {
  return buildModel({
    inputs: [input],
    outputs: [{ name: 'y', shape: [] }],
    initializers: [floatTensor('table', [3], [1, 2, 3])],
    nodes: [
      { op: 'ReduceMax', inputs: [input.name], outputs: ['m'], attrs: { keepdims: 0 } },
      { op: 'Cast', inputs: ['m'], outputs: ['i'], attrs: { to: ELEM.int64 } },
      { op: 'Gather', inputs: ['table', 'i'], outputs: ['y'], attrs: { axis: 0 } },
    ],
  });
}
