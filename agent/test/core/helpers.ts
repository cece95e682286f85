import crypto from 'node:crypto';
import { createLogger, type DesiredModel, type DesiredState } from '@perch/shared';

export const silentLogger = () => createLogger({ namespace: 'test', silent: true });

export const sha = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

export function desiredModel(name: string, version: string, extra: Partial<DesiredModel> = {}): DesiredModel {
  return {
    name,
    version,
    target: `models/${name}/${version}/bundle.tar`,
    sha256: sha(`${name}@${version}`),
    length: 1000,
    securityVersion: 0,
    ...extra,
  };
}

export function desiredState(
  models: DesiredModel[],
  rev = 1,
  pipelines: DesiredState['pipelines'] = [],
): DesiredState {
  return { v: 1, rev, ts: 0, models, pipelines };
}
