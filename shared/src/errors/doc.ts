import type { ErrorSpec } from './define';

/**
 * Renders the error registry as docs/ERRORS.md. The file is generated (`npm run docs:errors`) and a
 * unit test fails when the committed file and the registry drift apart.
 */
export function renderErrorsDoc(registry: Readonly<Record<string, ErrorSpec>>): string {
  const rows = Object.entries(registry)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([code, spec]) =>
        `| \`${code}\` | ${spec.http ?? ''} | ${escape(spec.meaning)} | ${escape(spec.action)} |`,
    );
  return [
    '# Error codes',
    '',
    '<!-- Generated from shared/src/errors by `npm run docs:errors`; do not edit by hand. -->',
    '',
    'Every error Perch reports carries one of these codes: in HTTP responses as',
    '`{"error": {"code", "message"}}`, in MQTT `cmd-result` and `reported` messages, in telemetry and in log',
    'lines (`code` field). Codes are stable; messages are for people and may change. The HTTP column is the',
    'status the controller answers with when the error reaches an API client.',
    '',
    '| code | HTTP | meaning | what to do |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

function escape(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}
