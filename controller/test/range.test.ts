import { parseRange } from '../src/http/range';
import { PacketSizeGuard } from '../src/mqtt/packet-guard';

describe('HTTP Range parsing', () => {
  it.each([
    [undefined, 'none'],
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=900-', { start: 900, end: 999 }],
    ['bytes=-100', { start: 900, end: 999 }],
    ['bytes=990-2000', { start: 990, end: 999 }],
    ['bytes=1000-', 'invalid'],
    ['bytes=50-10', 'invalid'],
    ['bytes=-0', 'invalid'],
    ['bytes=-', 'invalid'],
    ['items=0-1', 'none'],
    ['bytes=0-1,5-6', 'none'],
  ])('%s of 1000 bytes -> %j', (header, expected) => {
    expect(parseRange(header, 1000)).toEqual(expected);
  });
});

describe('MQTT packet size guard', () => {
  function feed(limit: number, chunks: Buffer[]): Promise<Error | undefined> {
    return new Promise((resolve) => {
      const g = new PacketSizeGuard(limit);
      g.on('error', (e) => resolve(e));
      g.on('data', () => undefined);
      g.on('finish', () => resolve(undefined));
      for (const c of chunks) g.write(c);
      g.end();
    });
  }
  const publish = (len: number) => {
    const header = [0x30];
    let n = len;
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      header.push(b);
    } while (n > 0);
    return Buffer.concat([Buffer.from(header), Buffer.alloc(len, 1)]);
  };

  it('passes packets within the limit, split anywhere', async () => {
    const data = Buffer.concat([publish(10), publish(300), publish(0), publish(1000)]);
    const chunks = [data.subarray(0, 1), data.subarray(1, 3), data.subarray(3, 500), data.subarray(500)];
    await expect(feed(1000, chunks)).resolves.toBeUndefined();
  });

  it('fails as soon as a header announces more than the limit', async () => {
    const big = publish(5000).subarray(0, 4);
    await expect(feed(1000, [big])).resolves.toBeInstanceOf(Error);
  });

  it('fails on a malformed remaining length', async () => {
    await expect(feed(1000, [Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])])).resolves.toBeInstanceOf(
      Error,
    );
  });
});
