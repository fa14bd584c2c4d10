/** Exit codes of `vox`: 0 passed, 1 a gate failed, 2 could not run (bad input, server, job). */
export const EXIT = { passed: 0, failed: 1, error: 2 } as const;

/** A failure the user can act on: printed as is (no stack), exit code 2. */
export class CliError extends Error {
  override name = "CliError";
}
