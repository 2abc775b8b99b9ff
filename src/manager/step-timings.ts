// Where the manager's time goes in one request: named steps, each the wall time since the step
// before it. Logged at debug level with the request (bench/prepare-steps.ts sums them up), so a
// profile of `prepare` needs no tracer; a mark costs one performance.now().

export class StepTimings {
  private readonly started = performance.now();
  private last = this.started;
  private readonly steps = new Map<string, number>();

  /** Ends the step running since the previous mark (or the start) and names it. */
  mark(step: string): void {
    const now = performance.now();
    this.steps.set(step, (this.steps.get(step) ?? 0) + (now - this.last));
    this.last = now;
  }

  /** Every step's ms (rounded to µs) and the total since the start. */
  summary(): { steps: Record<string, number>; totalMs: number } {
    const round = (ms: number): number => Math.round(ms * 1000) / 1000;
    const steps: Record<string, number> = {};
    for (const [name, ms] of this.steps) steps[name] = round(ms);
    return { steps, totalMs: round(performance.now() - this.started) };
  }
}

/** For callers that time nothing (register or apply requested on their own). */
export const UNTIMED: Pick<StepTimings, 'mark'> = { mark: () => undefined };
export type StepMarks = Pick<StepTimings, 'mark'>;
