import { signedSecurityVersion } from '../../src/core/reconcile/security-version';
import { desiredModel } from './helpers';

describe('signedSecurityVersion', () => {
  const model = desiredModel('faces', '2.0.0', { securityVersion: 2 });

  it('returns the signed security version when the desired state agrees', () => {
    expect(signedSecurityVersion(model, { securityVersion: 2, model: 'faces' })).toBe(2);
  });

  it.each([
    ['higher than signed', { securityVersion: 1 }],
    ['lower than signed', { securityVersion: 3 }],
    ['missing from the signed target', {}],
    ['not an integer in the signed target', { securityVersion: '2' }],
    ['negative in the signed target', { securityVersion: -1 }],
  ])('refuses a desired value %s', (_name, custom) => {
    expect(() => signedSecurityVersion(model, custom)).toThrow(
      expect.objectContaining({ code: 'E_UPDATE_SECURITY_VERSION_MISMATCH' }),
    );
  });
});
