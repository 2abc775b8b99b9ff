// Keys a callback under test reports (a released container, an exited process...), and a wait for
// one of them: a promise that resolves once it is reported and rejects after a bound (against
// hanging only), saying what was reported instead.
export class ReportedKeys {
  /** Every key reported, in order (a key reported twice is here twice). */
  readonly keys: string[] = [];
  private readonly waiters = new Map<string, () => void>();

  /** what: the report's words in the timeout error, e.g. "exit of". */
  constructor(
    private readonly what: string,
    private readonly boundMs = 10_000,
  ) {}

  add(key: string): void {
    this.keys.push(key);
    this.waiters.get(key)?.();
  }

  /** Resolves once key is reported (at once if it was already). */
  reported(key: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.keys.includes(key)) return resolve();
      const timer = setTimeout(() => reject(new Error(`no ${this.what} ${key} reported within ${this.boundMs} ms; reported: ${JSON.stringify(this.keys)}`)), this.boundMs);
      this.waiters.set(key, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
