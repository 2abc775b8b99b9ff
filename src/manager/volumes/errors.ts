/** A store-volume operation that failed; the message names the container, the path and the errno. */
export class VolumeError extends Error {
  override readonly name = 'VolumeError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The message of any thrown value, on one line. */
export function describe(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, '; ');
}
