import type { ErrorCode } from '../manager-api/v1.ts';

/** A request's failure, answered to the caller as {code, message}. */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
