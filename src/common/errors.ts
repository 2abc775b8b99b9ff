/**
 * An error sysrunc reports to its caller as one line, the way runc reports its own: the message names
 * the thing that is wrong and the operation that failed. Keep containerd's match words where they mean
 * the same ("does not exist", "container not running"): it classifies errors by substring.
 */
export class SysruncError extends Error {
  override readonly name = 'SysruncError';
  readonly exitCode: number;

  constructor(message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? 1;
  }
}

/** The message of any thrown value, folded to one line. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, '; ').trim();
}
