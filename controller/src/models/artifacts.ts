import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

const SHA256 = /^[0-9a-f]{64}$/;

/** Content-addressed blobs on disk: `<root>/<sha256>`, written through a temp file and rename. */
export class ArtifactStore {
  constructor(private readonly root: string) {}

  pathOf(sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error('not a sha256');
    return path.join(this.root, sha256);
  }

  async put(data: Buffer): Promise<{ sha256: string; length: number }> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const target = this.pathOf(sha256);
    try {
      await fs.access(target);
      return { sha256, length: data.length };
    } catch {
      // not there yet
    }
    await fs.mkdir(this.root, { recursive: true });
    const tmp = path.join(this.root, `.tmp-${randomBytes(8).toString('hex')}`);
    const fh = await fs.open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, target);
    return { sha256, length: data.length };
  }

  async stat(sha256: string): Promise<{ size: number } | undefined> {
    try {
      const s = await fs.stat(this.pathOf(sha256));
      return { size: s.size };
    } catch {
      return undefined;
    }
  }
}
