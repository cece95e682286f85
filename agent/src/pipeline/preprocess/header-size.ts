/**
 * Image size from the JPEG or PNG header, read in JavaScript: saves the pipeline a libvips round trip
 * (sharp.metadata) per frame. Undefined for anything else or a header it does not understand, in which case
 * the caller asks sharp.
 */
export function headerSize(buf: Uint8Array): { width: number; height: number } | undefined {
  if (buf.length >= 24 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47) {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const width = dv.getUint32(16);
    const height = dv.getUint32(20);
    return width > 0 && height > 0 ? { width, height } : undefined;
  }
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return undefined;
  let at = 2;
  while (at + 9 < buf.length) {
    if (buf[at] !== 0xff) return undefined;
    const marker = buf[at + 1] as number;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // markers without a length
      continue;
    }
    const len = ((buf[at + 2] as number) << 8) | (buf[at + 3] as number);
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = ((buf[at + 5] as number) << 8) | (buf[at + 6] as number);
      const width = ((buf[at + 7] as number) << 8) | (buf[at + 8] as number);
      return width > 0 && height > 0 ? { width, height } : undefined;
    }
    if (marker === 0xda || len < 2) return undefined; // scan data before any frame header: give up
    at += 2 + len;
  }
  return undefined;
}
