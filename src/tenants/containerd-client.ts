// A thin promise layer over containerd's gRPC services: every call carries the tenant's
// containerd namespace in the `containerd-namespace` metadata, as containerd's own clients do.
import * as grpc from '@grpc/grpc-js';
import { loadServices, type ServiceName } from './containerd-protos.ts';

export type Message = Record<string, unknown>;

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

type Unary = (req: Message, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Message) => void) => grpc.ClientUnaryCall;
type ServerStream = (req: Message, md: grpc.Metadata, opts?: grpc.CallOptions) => grpc.ClientReadableStream<Message>;

export class ContainerdClient {
  private readonly clients: Record<ServiceName, grpc.Client>;

  constructor(readonly address: string) {
    const ctors = loadServices();
    const channel = new grpc.Channel(`unix://${address}`, grpc.credentials.createInsecure(), {});
    this.clients = Object.fromEntries(
      Object.entries(ctors).map(([name, Ctor]) => [name, new Ctor(`unix://${address}`, grpc.credentials.createInsecure(), { channelOverride: channel })]),
    ) as unknown as Record<ServiceName, grpc.Client>;
  }

  /** One unary call; `ns` undefined for calls outside any namespace (namespaces, version). */
  call(service: ServiceName, method: string, ns: string | undefined, req: Message, timeoutMs = 30_000, lease?: string): Promise<Message> {
    const client = this.clients[service] as unknown as Record<string, Unary>;
    const fn = client[method];
    if (fn === undefined) return Promise.reject(new Error(`containerd API: ${service} has no method ${method}`));
    const md = new grpc.Metadata();
    if (ns !== undefined) md.set('containerd-namespace', ns);
    // What is created under a lease is safe from containerd's garbage collector until it ends.
    if (lease !== undefined) md.set('containerd-lease', lease);
    return new Promise((resolve, reject) => {
      fn.call(client, req, md, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err !== null) reject(new ContainerdCallError(err.code, `${service}.${method}`, err.details || err.message));
        else resolve(res);
      });
    });
  }

  /** A server stream (Events.Subscribe, Content.Read). */
  stream(service: ServiceName, method: string, ns: string | undefined, req: Message): grpc.ClientReadableStream<Message> {
    const client = this.clients[service] as unknown as Record<string, ServerStream>;
    const fn = client[method];
    if (fn === undefined) throw new Error(`containerd API: ${service} has no method ${method}`);
    const md = new grpc.Metadata();
    if (ns !== undefined) md.set('containerd-namespace', ns);
    return fn.call(client, req, md);
  }

  /** The whole of a content blob (manifests, image configs: small). */
  async readContent(ns: string, digest: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    const s = this.stream('content', 'Read', ns, { digest });
    return new Promise((resolve, reject) => {
      s.on('data', (m: Message) => chunks.push(Buffer.from(m['data'] as Uint8Array)));
      s.on('error', (err: grpc.ServiceError) => reject(new ContainerdCallError(err.code, 'content.Read', `${digest}: ${err.details || err.message}`)));
      s.on('end', () => resolve(Buffer.concat(chunks)));
    });
  }

  close(): void {
    for (const c of Object.values(this.clients)) c.close();
  }
}
