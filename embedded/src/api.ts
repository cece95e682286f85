import fs from 'node:fs';
import path from 'node:path';
import { PerchError } from '@perch/shared';

/** The few controller calls the launcher makes, with the admin token. */
export class AdminApi {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async call<T>(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.baseUrl}/api/v1${pathname}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body !== undefined && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: body instanceof FormData ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed as T };
  }

  async ok<T>(method: string, pathname: string, body?: unknown): Promise<T> {
    const res = await this.call<T>(method, pathname, body);
    if (res.status >= 300) {
      const err = (res.body as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new PerchError(
        'E_INTERNAL',
        `${method} ${pathname}: HTTP ${res.status} ${err?.code ?? ''} ${err?.message ?? ''}`.trim(),
      );
    }
    return res.body;
  }

  /** Uploads a bundle folder (model.onnx, spec.json, labels.txt) unless that version exists. */
  async ensureBundle(
    name: string,
    version: string,
    files: { model: string; spec: string; labels: string },
  ): Promise<boolean> {
    const existing = await this.call<{ versions?: Array<{ version: string }> }>('GET', `/models/${name}`);
    if (existing.status === 200 && existing.body.versions?.some((v) => v.version === version)) return false;
    const form = new FormData();
    for (const [field, file] of Object.entries(files)) {
      form.append(field, new Blob([fs.readFileSync(file)]), path.basename(file));
    }
    await this.ok('POST', `/models/${name}/versions/${version}`, form);
    return true;
  }
}
