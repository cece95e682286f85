/**
 * Test hook: when PERCH_TEST_KILL_AT names an update step, the process kills itself with SIGKILL at
 * that point (a "power cut" at a named step). Off unless the variable is set.
 */
export type KillPoint = (step: string) => void;

export const noKill: KillPoint = () => undefined;

export function killPointFromEnv(env: NodeJS.ProcessEnv = process.env): KillPoint {
  const target = env.PERCH_TEST_KILL_AT;
  if (!target) return noKill;
  return (step: string) => {
    if (step === target) process.kill(process.pid, 'SIGKILL');
  };
}
