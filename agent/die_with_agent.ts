/**
 * Children that die with the agent. A process killed with SIGKILL runs no handler, so the
 * browser, relays and synthesizers it started would be left running under PID 1; the kernel's
 * parent-death signal, set by util-linux's `setpriv` before it execs the program, kills them
 * with it instead.
 */

/** util-linux's setpriv, which can set a parent-death signal before exec'ing a program. */
export const SETPRIV = "/usr/bin/setpriv";

/**
 * The argv prefix that makes a child die with the agent: SIGKILL when the agent process goes,
 * however it goes (SIGKILL included, which no handler sees). Empty without setpriv.
 */
export function dieWithAgentArgs(): string[] {
  try {
    if (Deno.statSync(SETPRIV).isFile) return [SETPRIV, "--pdeathsig", "KILL", "--"];
  } catch { /* not installed */ }
  return [];
}

/** `cmd args…` prefixed so that it dies with the agent (see dieWithAgentArgs()). */
export function withAgentLife(cmd: string, args: string[]): { cmd: string; args: string[] } {
  const prefix = dieWithAgentArgs();
  return prefix.length ? { cmd: prefix[0], args: [...prefix.slice(1), cmd, ...args] } : { cmd, args };
}
