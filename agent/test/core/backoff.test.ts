import { Backoff } from '../../src/core/backoff';

describe('Backoff', () => {
  it('doubles the ceiling per failure up to the cap', () => {
    const b = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0.999999 });
    const delays = Array.from({ length: 6 }, () => b.next());
    expect(delays).toEqual([99, 199, 399, 799, 999, 999]);
  });

  it('uses full jitter between zero and the ceiling', () => {
    const values = [0, 0.5, 0.25];
    const b = new Backoff({ baseMs: 1000, capMs: 60_000, random: () => values.shift() ?? 0 });
    expect(b.next()).toBe(0);
    expect(b.next()).toBe(1000);
    expect(b.next()).toBe(1000);
  });

  it('respects the minimum and starts over after reset', () => {
    const b = new Backoff({ baseMs: 100, capMs: 10_000, minMs: 50, random: () => 0 });
    b.next();
    b.next();
    expect(b.attempts).toBe(2);
    expect(b.next()).toBe(50);
    b.reset();
    expect(b.ceiling()).toBe(100);
  });

  it('never overflows past the cap after very many failures', () => {
    const b = new Backoff({ baseMs: 1, capMs: 5000, random: () => 1 });
    for (let i = 0; i < 2000; i++) b.next();
    expect(b.next()).toBe(5000);
  });

  it('refuses nonsense parameters', () => {
    expect(() => new Backoff({ baseMs: 0, capMs: 10 })).toThrow(RangeError);
    expect(() => new Backoff({ baseMs: 10, capMs: 5 })).toThrow(RangeError);
  });
});
