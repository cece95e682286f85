import type { Geometry } from '../preprocess/geometry';
import type { TensorData } from '../preprocess/tensor';
import type { InferenceResult } from '../types';

/** The parts of an onnxruntime output tensor a postprocessor reads (plain objects in unit tests). */
export interface OutputTensor {
  readonly dims: readonly number[];
  readonly type: string;
  readonly data: unknown;
}

export type Outputs = Readonly<Record<string, OutputTensor>>;

export interface PostContext {
  /** Absent for audio and sensor inputs. */
  readonly geometry?: Geometry;
  readonly labels: readonly string[];
}

export interface Postprocessor {
  /** Output names to fetch; all outputs when absent. */
  readonly outputNames?: readonly string[];
  /** Extra inputs for the next run (a recurrent model's state). */
  feeds?(): Record<string, TensorData>;
  /** Throws E_PIPELINE_POSTPROCESS when the outputs do not have the expected shape. */
  process(outputs: Outputs, ctx: PostContext): InferenceResult;
  /** Forget state carried across runs (a new stream, or a model swap). */
  reset?(): void;
}
