import fs from 'node:fs';
import path from 'node:path';
import { errorRegistry, isErrorCode, PerchError, renderErrorsDoc } from '@perch/shared';

describe('error registry', () => {
  it('has a meaning and an operator action for every code', () => {
    for (const [code, spec] of Object.entries(errorRegistry)) {
      expect(code).toMatch(/^E_[A-Z0-9_]+$/);
      expect(spec.meaning.length).toBeGreaterThan(10);
      expect(spec.action.length).toBeGreaterThan(5);
      if (spec.http !== undefined) expect(spec.http).toBeGreaterThanOrEqual(400);
    }
  });

  it('docs/ERRORS.md is the rendering of the registry (run `npm run docs:errors` after adding a code)', () => {
    const committed = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'ERRORS.md'), 'utf8');
    expect(committed).toBe(renderErrorsDoc(errorRegistry));
  });

  it('PerchError carries its code, HTTP status and safe JSON', () => {
    const err = new PerchError('E_PAYLOAD_TOO_LARGE', 'too big', { limit: 10 });
    expect(err.httpStatus).toBe(413);
    expect(err.toJSON()).toEqual({ code: 'E_PAYLOAD_TOO_LARGE', message: 'too big', details: { limit: 10 } });
    expect(JSON.stringify(err)).not.toContain('stack');
    expect(isErrorCode('E_SCHEMA')).toBe(true);
    expect(isErrorCode('E_NOPE')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
  });
});
