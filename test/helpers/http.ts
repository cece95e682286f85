export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * One JSON request against a controller on a real port (fastify's inject() cannot run under jest:
 * light-my-request pulls in the ESM-only cookie@2). A string body is sent as it is; the answer is
 * parsed as JSON when it is JSON, else returned as text.
 */
export async function httpJson<T = Record<string, unknown>>(
  baseUrl: string,
  method: HttpMethod,
  url: string,
  token: string | undefined,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${baseUrl}${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed as T };
}
