/**
 * Error codes are the stable part of an error: control flow and operators rely on them,
 * messages are for people and may change. Each domain keeps its codes in its own file under
 * `codes/` so that work in one domain never edits another's list.
 */
export interface ErrorSpec {
  /** What happened, in one sentence. */
  readonly meaning: string;
  /** What the operator should do about it. */
  readonly action: string;
  /** HTTP status the controller answers with when this error reaches a client. */
  readonly http?: number;
}

export type ErrorTable = Readonly<Record<`E_${string}`, ErrorSpec>>;

/** Identity function that keeps the literal keys of a domain's table. */
export function defineErrors<const T extends ErrorTable>(table: T): T {
  return table;
}
