// The store volumes' fault points use the shared module (src/testing/fault.ts).
export { faultPoint } from '../../testing/fault.ts';
