/**
 * Camera URLs carry credentials (rtsp://user:pass@host, ?password=...), and ffmpeg repeats the URL in its
 * errors. Everything that leaves a source for logs or telemetry goes through this first.
 */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi;
const SECRET_PARAMS = /([?&;](?:password|passwd|pwd|pass|token|auth|key|secret)=)[^&\s#]*/gi;

export function redact(text: string): string {
  return text.replace(USERINFO, '$1***@').replace(SECRET_PARAMS, '$1***');
}
