// What src/rpc/ needs to know of a service's API: its method table (each API file in
// manager-api/, depot-api/, tenants-api/ is the one definition of its methods) and its envelope.
// The wire format, for every service: one JSON object a line. A request is
// {"v":V,"seq":N,"method":"...","params":{...}}; its answer {"seq":N,"result":{...}} or
// {"seq":N,"error":{"code":"...","message":"..."}}, after any number of {"seq":N,"event":{...}}
// lines for a streaming method. An answer that cannot be tied to a request carries seq -1.
import * as z from 'zod/mini';

export interface MethodSpec {
  readonly params: z.ZodMiniType;
  readonly result: z.ZodMiniType;
  /** A streaming method's events, sent before its result. */
  readonly event?: z.ZodMiniType;
  /**
   * Asking twice does what asking once does: a client whose connection died with the request
   * unanswered (the daemon restarting) sends it again to the next daemon. Only these are resent.
   */
  readonly idempotent?: boolean;
  /**
   * The answer comes when something outside the daemon happens (a process exits, a shutdown
   * timeout runs out): no client-side call timeout, the daemon bounds it.
   */
  readonly longPoll?: boolean;
}

export type MethodTable = { readonly [method: string]: MethodSpec };
export type MethodOf<T extends MethodTable> = keyof T & string;
export type ParamsOf<T extends MethodTable, M extends MethodOf<T>> = z.infer<T[M]['params']>;
export type ResultOf<T extends MethodTable, M extends MethodOf<T>> = z.infer<T[M]['result']>;
export type EventOf<T extends MethodTable, M extends MethodOf<T>> = T[M]['event'] extends z.ZodMiniType ? z.infer<T[M]['event']> : never;

/** One service's API as both ends see it. */
export interface ServiceApi<T extends MethodTable> {
  /** e.g. "depot daemon": errors read "<what> at <socket>: ...". */
  readonly what: string;
  /** The daemon's command (sysrunc-depotd): the refusal names it, the connect error says to start it. */
  readonly daemon: string;
  readonly version: number;
  readonly methods: T;
  /** The error codes the daemon answers with. */
  readonly errorCode: z.ZodMiniType<string>;
}

export function requestEnvelope(version: number) {
  return z.object({ v: z.literal(version), seq: z.int(), method: z.string(), params: z.unknown() });
}

export function replyEnvelope(errorCode: z.ZodMiniType<string>) {
  return z.union([
    z.object({ seq: z.int(), result: z.unknown() }),
    z.object({ seq: z.int(), event: z.unknown() }),
    z.object({ seq: z.int(), error: z.object({ code: errorCode, message: z.string() }) }),
  ]);
}

/** "/path/to/field: message" of a schema's first complaint. */
export function firstIssue(error: { readonly issues: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[] }): string {
  const issue = error.issues[0];
  return `/${issue?.path.map(String).join('/') ?? ''}: ${issue?.message ?? 'invalid'}`;
}
