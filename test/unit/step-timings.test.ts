// The manager's per-step timings (src/manager/step-timings.ts): each mark ends a named step, a name
// marked again adds to it, and the total covers every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StepTimings } from '../../src/manager/step-timings.ts';

test('steps are listed by name in the order first marked, a repeated name adding up', () => {
  const steps = new StepTimings();
  steps.mark('bundle');
  steps.mark('apply.idmapped-mount');
  steps.mark('apply.idmapped-mount');
  steps.mark('config');
  assert.deepEqual(Object.keys(steps.summary().steps), ['bundle', 'apply.idmapped-mount', 'config']);
});

test('the total is at least the sum of the steps', () => {
  const steps = new StepTimings();
  for (const name of ['a', 'b', 'a', 'c']) steps.mark(name);
  const { steps: each, totalMs } = steps.summary();
  const sum = Object.values(each).reduce((x, y) => x + y, 0);
  assert.ok(totalMs + 0.003 >= sum, `total ${totalMs} < sum ${sum}`);
  assert.ok(Object.values(each).every((ms) => ms >= 0));
});
