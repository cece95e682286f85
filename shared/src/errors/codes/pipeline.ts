import { defineErrors } from '../define';

/** Codes raised by the pipeline domain. Add new codes here; docs/ERRORS.md is regenerated from the registry. */
export const pipelineErrors = defineErrors({
  E_PIPELINE_SPEC_INVALID: {
    meaning: "A model bundle's spec.json does not match the model spec schema.",
    action: 'Fix every path listed in the error details and upload the bundle again.',
    http: 400,
  },
  E_PIPELINE_SPEC_MISMATCH: {
    meaning:
      'The spec does not fit the model: a tensor name is not in the model, or the layout, size or type disagrees with the model input.',
    action:
      "Compare the spec's input/output names, layout and size with the model's (the details list both).",
    http: 400,
  },
  E_PIPELINE_MODEL_LOAD: {
    meaning: 'onnxruntime could not load the model file.',
    action: 'Check that the bundle contains a valid ONNX model for the onnxruntime version on the device.',
  },
  E_PIPELINE_PROVIDER_FALLBACK: {
    meaning:
      'A requested execution provider is not available in this onnxruntime build; a later one (CPU at last) is used.',
    action: 'Install an onnxruntime build with that provider, or remove it from the pipeline options.',
  },
  E_PIPELINE_INFERENCE: {
    meaning: 'The model failed while running on one input; the item was skipped and the pipeline goes on.',
    action: 'If it repeats, check the model with the same input offline; the error details name the tensor.',
  },
  E_PIPELINE_DECODE: {
    meaning:
      'A frame could not be decoded or preprocessed (corrupt or unsupported image data); it was skipped.',
    action: 'Check the camera or image source; an occasional corrupt frame is harmless.',
  },
  E_PIPELINE_INPUT_KIND: {
    meaning:
      "The source yields items of a different kind than the model's input (e.g. audio into an image model).",
    action: 'Pair the pipeline with a source that produces what the model spec expects.',
  },
  E_PIPELINE_POSTPROCESS: {
    meaning: "The model's output does not have the shape the postprocessor expects; the result was skipped.",
    action: "Check the postprocessor kind and parameters in the spec against the model's outputs.",
  },
  E_PIPELINE_SINK: {
    meaning: 'An event sink threw or rejected; the event was not delivered there.',
    action: 'Look at the log line of the sink (usually the outbox) for the cause.',
  },
  E_PIPELINE_SNAPSHOT: {
    meaning: 'A snapshot could not be rendered or stored; the event was sent without it.',
    action: 'Check free disk space and permissions of the snapshot folder.',
  },
  E_PIPELINE_SOURCE: {
    meaning: 'The pipeline could not start its source.',
    action: "See the source's own error code in the details and fix the source configuration.",
  },
  E_PIPELINE_SOURCE_NOT_ALLOWED: {
    meaning:
      "A pipeline from the desired state has a source the device's remotePipelines policy does not allow (a command, a file, a folder or URL host outside the allowed ones); it is not started, the other pipelines run.",
    action:
      'Use a source the device allows, or have the device owner allow it in the agent config file (remotePipelines); local pipelines in that file are not checked.',
  },
  E_PIPELINE_SWAP_FAILED: {
    meaning: 'A new model could not be loaded or warmed up; the pipeline keeps running the previous model.',
    action: 'See the cause in the details (load, spec mismatch or inference error) and fix the bundle.',
  },
  E_PIPELINE_MODEL_MISSING: {
    meaning: 'A pipeline names a model that is not installed (yet) on the device; it is not started.',
    action: 'Check the model name in the pipeline config; the pipeline starts once the model is installed.',
  },
  E_PIPELINE_NOT_RUNNING: {
    meaning: 'The operation needs a running pipeline, and this one is stopped or has no model.',
    action: 'Start the pipeline first, or wait until its model is loaded.',
  },
});
