import { backoffDelay } from '../../src/sources/backoff';
import { BoundedQueue } from '../../src/sources/bounded-queue';
import { LineSplitter } from '../../src/sources/line-splitter';
import { FixedSizeSplitter } from '../../src/sources/raw-splitter';
import { redact } from '../../src/sources/redact';
import { StderrTail } from '../../src/sources/stderr-tail';
import { Windower } from '../../src/sources/windower';

describe('BoundedQueue', () => {
  it('drops the oldest item when full and counts it', async () => {
    const q = new BoundedQueue<number>(1);
    q.push(1);
    q.push(2);
    q.push(3);
    expect(q.dropped).toBe(2);
    await expect(q.take()).resolves.toBe(3);
  });

  it('hands an item straight to a waiting consumer', async () => {
    const q = new BoundedQueue<number>(1);
    const taken = q.take();
    q.push(7);
    await expect(taken).resolves.toBe(7);
    expect(q.dropped).toBe(0);
  });

  it('keeps order up to its capacity', async () => {
    const q = new BoundedQueue<number>(3);
    for (const n of [1, 2, 3, 4]) q.push(n);
    expect([await q.take(), await q.take(), await q.take()]).toEqual([2, 3, 4]);
  });

  it('answers undefined once closed and drained, and when aborted', async () => {
    const q = new BoundedQueue<number>(2);
    q.push(1);
    q.close();
    expect(q.push(2)).toBe(false);
    await expect(q.take()).resolves.toBe(1);
    await expect(q.take()).resolves.toBeUndefined();
    const open = new BoundedQueue<number>(1);
    const ac = new AbortController();
    const waiting = open.take(ac.signal);
    ac.abort();
    await expect(waiting).resolves.toBeUndefined();
  });
});

describe('backoffDelay', () => {
  const opts = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
  it('grows exponentially up to the cap without jitter', () => {
    const d = [0, 1, 2, 3, 4, 5].map((a) => backoffDelay(opts, a, () => 0));
    expect(d).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
  it('takes jitter off the top, never adding to it', () => {
    expect(backoffDelay(opts, 2, () => 1)).toBe(200);
    expect(backoffDelay(opts, 2, () => 0.5)).toBe(300);
  });
});

describe('Windower', () => {
  it('emits windows every hop readings, overlapping when hop < window', () => {
    const w = new Windower(4, 2);
    const out = w.push([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(out.map((a) => Array.from(a))).toEqual([
      [1, 2, 3, 4],
      [3, 4, 5, 6],
      [5, 6, 7, 8],
    ]);
  });
  it('skips readings between windows when hop > window', () => {
    const w = new Windower(2, 3);
    expect(w.push([1, 2, 3, 4, 5, 6, 7, 8]).map((a) => Array.from(a))).toEqual([
      [1, 2],
      [4, 5],
      [7, 8],
    ]);
  });
  it('keeps channels of a reading together across pushes', () => {
    const w = new Windower(2, 1, 3);
    expect(w.push([1, 1, 1])).toHaveLength(0);
    const out = w.push(new Float32Array([2, 2, 2, 3, 3, 3]));
    expect(out.map((a) => Array.from(a))).toEqual([
      [1, 1, 1, 2, 2, 2],
      [2, 2, 2, 3, 3, 3],
    ]);
  });
});

describe('LineSplitter', () => {
  it('splits LF and CRLF lines across chunks and flushes a last line', () => {
    const s = new LineSplitter();
    expect(s.push(Buffer.from('1\r\n2\n3'))).toEqual([
      { kind: 'line', text: '1' },
      { kind: 'line', text: '2' },
    ]);
    expect(s.push(Buffer.from('4\n'))).toEqual([{ kind: 'line', text: '34' }]);
    s.push(Buffer.from('5'));
    expect(s.flush()).toEqual([{ kind: 'line', text: '5' }]);
  });
  it('reports an over-long line once and resumes after its newline', () => {
    const s = new LineSplitter(8);
    const out = [
      ...s.push(Buffer.from('x'.repeat(6))),
      ...s.push(Buffer.from('y'.repeat(6))),
      ...s.push(Buffer.from('z\nok\n')),
    ];
    expect(out).toEqual([
      { kind: 'too-long', bytes: 13 },
      { kind: 'line', text: 'ok' },
    ]);
  });
});

describe('FixedSizeSplitter', () => {
  it('cuts fixed-size frames across chunk boundaries', () => {
    const s = new FixedSizeSplitter(4);
    const out = [...s.push(Buffer.from([1, 2, 3])), ...s.push(Buffer.from([4, 5, 6, 7, 8, 9]))];
    expect(out.map((b) => Array.from(b))).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
  });
});

describe('StderrTail and redact', () => {
  it('keeps the last lines, with credentials in URLs redacted', () => {
    const t = new StderrTail(2);
    t.push('a\nrtsp://admin:hunter2@cam/stream: 401 Unauthorized\nhttp://cam/snap?user=x&password=s3cret');
    t.push('ped and more\n');
    const lines = t.get();
    expect(lines).toEqual([
      'rtsp://***@cam/stream: 401 Unauthorized',
      'http://cam/snap?user=x&password=*** and more',
    ]);
    expect(lines.join()).not.toMatch(/hunter2|s3cret/);
  });
  it('redacts user info and secret query parameters', () => {
    expect(redact('rtsp://u:p@h:554/x?token=abc&x=1')).toBe('rtsp://***@h:554/x?token=***&x=1');
  });
});
