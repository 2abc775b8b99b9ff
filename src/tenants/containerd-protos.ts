// containerd's gRPC API, loaded at run time from the .proto files Debian ships
// (golang-github-containerd-containerd-dev, golang-github-gogo-protobuf-dev for gogo.proto).
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const GOCODE = process.env['SYSRUNC_GOCODE'] ?? '/usr/share/gocode/src';
const CONTAINERD = path.join(GOCODE, 'github.com/containerd/containerd');
const INCLUDE = [GOCODE, path.join(GOCODE, 'github.com/gogo/protobuf')];

const SERVICES = ['containers', 'tasks', 'namespaces', 'events', 'images', 'content', 'snapshots', 'leases', 'version'] as const;
export type ServiceName = (typeof SERVICES)[number];

function serviceFile(name: ServiceName): string {
  return path.join(CONTAINERD, 'api/services', name, 'v1', name === 'namespaces' ? 'namespace.proto' : `${name}.proto`);
}

export type GrpcServiceCtor = grpc.ServiceClientConstructor;

/** One constructor per containerd service (containerd.services.<name>.v1.<Service>). */
export function loadServices(): Record<ServiceName, GrpcServiceCtor> {
  const files = SERVICES.map(serviceFile);
  for (const f of files) {
    if (!existsSync(f)) throw new Error(`containerd API proto ${f} is missing (apt-get install golang-github-containerd-containerd-dev golang-github-gogo-protobuf-dev)`);
  }
  const def = protoLoader.loadSync(files, { includeDirs: INCLUDE, keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const root = grpc.loadPackageDefinition(def) as unknown as Record<string, Record<string, Record<string, Record<string, Record<string, GrpcServiceCtor>>>>>;
  const svc = (name: ServiceName, service: string): GrpcServiceCtor => {
    const ctor = root['containerd']?.['services']?.[name]?.['v1']?.[service];
    if (ctor === undefined) throw new Error(`containerd API: no service containerd.services.${name}.v1.${service} in ${serviceFile(name)}`);
    return ctor as unknown as GrpcServiceCtor;
  };
  return {
    containers: svc('containers', 'Containers'),
    tasks: svc('tasks', 'Tasks'),
    namespaces: svc('namespaces', 'Namespaces'),
    events: svc('events', 'Events'),
    images: svc('images', 'Images'),
    content: svc('content', 'Content'),
    snapshots: svc('snapshots', 'Snapshots'),
    leases: svc('leases', 'Leases'),
    version: svc('version', 'Version'),
  };
}

/** The runc v2 shim's options message (containerd.runc.v1.Options), packed as an Any. */
export interface RuncOptions {
  binary_name: string;
  root: string;
}

let optionsType: protobuf.Type | undefined;
let eventTypes: protobuf.Root | undefined;

export function packRuncOptions(o: RuncOptions): { type_url: string; value: Buffer } {
  if (optionsType === undefined) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : INCLUDE.map((d) => path.join(d, target)).find((f) => existsSync(f)) ?? target);
    root.loadSync(path.join(CONTAINERD, 'runtime/v2/runc/options/oci.proto'), { keepCase: true });
    optionsType = root.lookupType('containerd.runc.v1.Options');
  }
  return { type_url: 'containerd.runc.v1.Options', value: Buffer.from(optionsType.encode(optionsType.fromObject(o)).finish()) };
}

/** Decodes an event envelope's Any (e.g. containerd.events.TaskExit); undefined for unknown types. */
export function decodeEvent(any: { type_url?: string; value?: Uint8Array }): { type: string; body: Record<string, unknown> } | undefined {
  if (eventTypes === undefined) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : INCLUDE.map((d) => path.join(d, target)).find((f) => existsSync(f)) ?? target);
    root.loadSync(path.join(CONTAINERD, 'api/events/task.proto'), { keepCase: true });
    eventTypes = root;
  }
  const name = (any.type_url ?? '').replace(/^.*\//, '');
  let type: protobuf.Type;
  try {
    type = eventTypes.lookupType(name);
  } catch {
    return undefined;
  }
  const msg = type.decode(any.value ?? new Uint8Array());
  return { type: name, body: type.toObject(msg, { longs: Number, defaults: true }) as Record<string, unknown> };
}
