import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { CONTROLLER_ENV, controllerConfigSchema, loadControllerConfig } from '../../controller/src/config';
import { AGENT_ENV_MAP, agentConfigSchema, loadAgentConfig } from '../../agent/src/core/config';

/**
 * The README's configuration reference is written by hand from the config schemas. These tests fail when
 * a key, an environment variable or a default changes in a schema and the README is not updated (or the
 * README names a key that no longer exists).
 */

const ROOT = path.resolve(__dirname, '..', '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The text of a `### <heading>` section, up to the next heading of level 2 or 3. */
function section(heading: string): string {
  const start = README.indexOf(`\n### ${heading}`);
  if (start === -1) throw new Error(`README has no section "### ${heading}"`);
  const rest = README.slice(start + 1);
  const end = rest.slice(4).search(/\n#{2,3} /);
  return end === -1 ? rest : rest.slice(0, end + 4);
}

interface Row {
  key: string;
  cells: string[];
}

/** Table rows whose first cell is one backticked name: `| `http.port` | ... |`. */
function tableRows(text: string): Row[] {
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    const m = /^\|\s*`([^`]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (m) rows.push({ key: m[1]!, cells: m[2]!.split('|').map((c) => c.trim()) });
  }
  return rows;
}

/** Dotted paths of every leaf of a zod object schema (wrappers such as default/optional unwrapped). */
function leafKeys(schema: z.ZodType, prefix = ''): string[] {
  let s = schema as unknown as { _zod: { def: Record<string, unknown> } };
  for (;;) {
    const def = s._zod.def;
    if (['default', 'prefault', 'optional', 'nullable', 'readonly'].includes(def.type as string))
      s = def.innerType as typeof s;
    else if (def.type === 'pipe') s = def.in as typeof s;
    else break;
  }
  const def = s._zod.def;
  if (def.type !== 'object') return [prefix];
  const shape = def.shape as Record<string, z.ZodType>;
  return Object.entries(shape).flatMap(([k, v]) => leafKeys(v, prefix ? `${prefix}.${k}` : k));
}

function valueAt(obj: unknown, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}

function checkReference(options: {
  heading: string;
  schema: z.ZodType;
  envMap: Record<string, string>;
  defaults: unknown;
}): void {
  const rows = tableRows(section(options.heading));
  const documented = new Map(rows.map((r) => [r.key, r]));
  const keys = leafKeys(options.schema);

  const missing = keys.filter((k) => !documented.has(k));
  expect({ heading: options.heading, missing }).toEqual({ heading: options.heading, missing: [] });

  const unknown = rows.map((r) => r.key).filter((k) => !keys.includes(k));
  expect({ heading: options.heading, unknown }).toEqual({ heading: options.heading, unknown: [] });

  // Column 2 is the environment variable; it must be the one the loader maps to this key.
  const envOf = new Map(Object.entries(options.envMap).map(([env, key]) => [key, env]));
  const wrongEnv = rows
    .filter((r) => (envOf.has(r.key) ? r.cells[0] !== `\`${envOf.get(r.key)}\`` : r.cells[0] !== ''))
    .map((r) => `${r.key}: README says "${r.cells[0]}", the loader maps ${envOf.get(r.key) ?? 'nothing'}`);
  expect(wrongEnv).toEqual([]);

  // Column 4 starts with the default in backticks (strings bare, everything else as JSON).
  const wrongDefault = rows
    .map((r) => {
      const value = valueAt(options.defaults, r.key);
      if (value === undefined) return undefined;
      const want = `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
      return r.cells[2]?.startsWith(want)
        ? undefined
        : `${r.key}: default is ${want}, README says "${r.cells[2]}"`;
    })
    .filter((x) => x !== undefined);
  expect(wrongDefault).toEqual([]);
}

describe('the README configuration reference', () => {
  it('lists every controller config key with its environment variable and default', () => {
    checkReference({
      heading: 'Controller (`perch-controller`)',
      schema: controllerConfigSchema,
      envMap: CONTROLLER_ENV,
      defaults: loadControllerConfig({ env: {} }),
    });
  });

  it('lists every agent config key with its environment variable and default', () => {
    checkReference({
      heading: 'Agent (`perch-agent`)',
      schema: agentConfigSchema,
      envMap: AGENT_ENV_MAP,
      defaults: loadAgentConfig({ env: {} }),
    });
  });

  it('names every PERCH_ variable the embedded launcher reads or sets', () => {
    const dir = path.join(ROOT, 'embedded', 'src');
    const names = new Set<string>();
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      for (const m of fs.readFileSync(path.join(dir, file), 'utf8').matchAll(/\bPERCH_[A-Z0-9_]+\b/g))
        names.add(m[0]);
    }
    expect(names.size).toBeGreaterThan(0);
    const text = section('Embedded launcher (`npm start`)');
    expect([...names].filter((n) => !text.includes(`\`${n}\``)).sort()).toEqual([]);
  });
});
