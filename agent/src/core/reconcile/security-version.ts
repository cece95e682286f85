import { PerchError, type DesiredModel } from '@perch/shared';

/**
 * The security version of a model version as the signed target states it (`custom.securityVersion`,
 * written by the controller when it signs the bundle). The desired state repeats it, but the desired
 * state is not signed: whoever can write or spoof it must not be able to move a device back to an
 * older signed version by claiming a higher number, nor raise the persisted floor by claiming one.
 * So the value that is persisted and enforced is this one, and a desired state that disagrees is
 * refused.
 */
export function signedSecurityVersion(
  model: DesiredModel,
  custom: Readonly<Record<string, unknown>>,
): number {
  const signed = custom.securityVersion;
  if (typeof signed !== 'number' || !Number.isSafeInteger(signed) || signed < 0) {
    throw new PerchError(
      'E_UPDATE_SECURITY_VERSION_MISMATCH',
      `the signed target of ${model.name}@${model.version} carries no valid security version`,
      { desired: model.securityVersion, signed: signed === undefined ? null : String(signed) },
    );
  }
  if (signed !== model.securityVersion) {
    throw new PerchError(
      'E_UPDATE_SECURITY_VERSION_MISMATCH',
      `desired ${model.name}@${model.version} claims security version ${model.securityVersion}, the signed target says ${signed}`,
      { desired: model.securityVersion, signed },
    );
  }
  return signed;
}
