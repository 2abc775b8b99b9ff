// A thin, typed promise layer over containerd's gRPC services: every call carries the tenant's
// containerd namespace in the `containerd-namespace` metadata, as containerd's own clients do.
// Requests and answers are the types generated from containerd's .proto files (containerd-protos.ts).
import * as grpc from '@grpc/grpc-js';
import { connectServices, type ServiceClients, type ServiceName } from './containerd-protos.ts';
import type { Container__Output } from './containerd-api/generated/types/containerd/services/containers/v1/Container.ts';

/** A container's record in containerd, as Containers.Get and List answer it. */
export type ContainerRecord = Container__Output;

/** A gRPC status code and message from containerd (NOT_FOUND = 5, ALREADY_EXISTS = 6, ...). */
export class ContainerdCallError extends Error {
  override readonly name = 'ContainerdCallError';
  constructor(
    readonly code: number,
    readonly call: string,
    message: string,
  ) {
    super(`containerd ${call}: ${message}`);
  }
}

export const GRPC_NOT_FOUND = grpc.status.NOT_FOUND;
export const GRPC_ALREADY_EXISTS = grpc.status.ALREADY_EXISTS;
export const GRPC_DEADLINE = grpc.status.DEADLINE_EXCEEDED;

export function isNotFound(err: unknown): boolean {
  return err instanceof ContainerdCallError && err.code === GRPC_NOT_FOUND;
}

// A generated client method is overloaded; its last overload is `(request, callback)` for a unary
// method and `(request, options?)` returning a stream for a server-streaming one.
type UnaryShape<Req, Res> = (request: Req, callback: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;
type StreamShape<Req, Res> = (request: Req, options?: grpc.CallOptions) => grpc.ClientReadableStream<Res>;

/** The unary methods of a service (the generated clients' PascalCase names). */
export type UnaryMethod<S extends ServiceName> = {
  [M in keyof ServiceClients[S]]: M extends Capitalize<M & string> ? (ServiceClients[S][M] extends (request: never, callback: never) => grpc.ClientUnaryCall ? M : never) : never;
}[keyof ServiceClients[S]] &
  string;
export type RequestOf<S extends ServiceName, M extends keyof ServiceClients[S]> = ServiceClients[S][M] extends UnaryShape<infer Req, infer _Res> ? Req : never;
export type ResponseOf<S extends ServiceName, M extends keyof ServiceClients[S]> = ServiceClients[S][M] extends UnaryShape<infer _Req, infer Res> ? Res : never;

export type StreamMethod<S extends ServiceName> = {
  [M in keyof ServiceClients[S]]: M extends Capitalize<M & string> ? (ServiceClients[S][M] extends (request: never, options?: never) => grpc.ClientReadableStream<unknown> ? M : never) : never;
}[keyof ServiceClients[S]] &
  string;
type StreamRequestOf<S extends ServiceName, M extends keyof ServiceClients[S]> = ServiceClients[S][M] extends StreamShape<infer Req, infer _Res> ? Req : never;
type StreamItemOf<S extends ServiceName, M extends keyof ServiceClients[S]> = ServiceClients[S][M] extends StreamShape<infer _Req, infer Res> ? Res : never;

type AnyUnary = (request: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;
type AnyStream = (request: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<unknown>;

function metadata(ns: string | undefined, lease?: string): grpc.Metadata {
  const md = new grpc.Metadata();
  if (ns !== undefined) md.set('containerd-namespace', ns);
  // What is created under a lease is safe from containerd's garbage collector until it ends.
  if (lease !== undefined) md.set('containerd-lease', lease);
  return md;
}

export class ContainerdClient {
  private readonly clients: ServiceClients;

  constructor(readonly address: string) {
    this.clients = connectServices(address);
  }

  /** One unary call; `ns` undefined for calls outside any namespace (namespaces, version). */
  call<S extends ServiceName, M extends UnaryMethod<S>>(service: S, method: M, ns: string | undefined, req: RequestOf<S, M>, timeoutMs = 30_000, lease?: string): Promise<ResponseOf<S, M>> {
    const client = this.clients[service];
    const fn = client[method] as unknown as AnyUnary;
    return new Promise((resolve, reject) => {
      fn.call(client, req, metadata(ns, lease), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err !== null) reject(new ContainerdCallError(err.code, `${service}.${method}`, err.details || err.message));
        else resolve(res as ResponseOf<S, M>);
      });
    });
  }

  /** A server stream (Events.Subscribe, Content.Read). */
  stream<S extends ServiceName, M extends StreamMethod<S>>(service: S, method: M, ns: string | undefined, req: StreamRequestOf<S, M>): grpc.ClientReadableStream<StreamItemOf<S, M>> {
    const client = this.clients[service];
    const fn = client[method] as unknown as AnyStream;
    return fn.call(client, req, metadata(ns)) as grpc.ClientReadableStream<StreamItemOf<S, M>>;
  }

  /** The whole of a content blob (manifests, image configs: small). */
  async readContent(ns: string, digest: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    const s = this.stream('content', 'Read', ns, { digest });
    return new Promise((resolve, reject) => {
      s.on('data', (m: { data: Buffer }) => chunks.push(Buffer.from(m.data)));
      s.on('error', (err: grpc.ServiceError) => reject(new ContainerdCallError(err.code, 'content.Read', `${digest}: ${err.details || err.message}`)));
      s.on('end', () => resolve(Buffer.concat(chunks)));
    });
  }

  close(): void {
    for (const c of Object.values(this.clients) as grpc.Client[]) c.close();
  }
}
