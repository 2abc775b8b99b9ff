// containerd's gRPC API, typed. The .proto files are vendored in containerd-api/proto/ (their source
// and licences: containerd-api/proto/SOURCES.md); scripts/gen-containerd-api.mjs turns them into
// TypeScript types (containerd-api/generated/types/) and one JSON descriptor that is loaded here,
// so no .proto file is read at run time.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { containerdDescriptor } from './containerd-api/generated/descriptor.ts';
import type { ProtoGrpcType as ContainersApi } from './containerd-api/generated/types/containers.ts';
import type { ProtoGrpcType as ContentApi } from './containerd-api/generated/types/content.ts';
import type { ProtoGrpcType as EventsApi } from './containerd-api/generated/types/events.ts';
import type { ProtoGrpcType as ImagesApi } from './containerd-api/generated/types/images.ts';
import type { ProtoGrpcType as LeasesApi } from './containerd-api/generated/types/leases.ts';
import type { ProtoGrpcType as NamespacesApi } from './containerd-api/generated/types/namespace.ts';
import type { ProtoGrpcType as SnapshotsApi } from './containerd-api/generated/types/snapshots.ts';
import type { ProtoGrpcType as TasksApi } from './containerd-api/generated/types/tasks.ts';
import type { ProtoGrpcType as VersionApi } from './containerd-api/generated/types/version.ts';
import type { ContainersClient } from './containerd-api/generated/types/containerd/services/containers/v1/Containers.ts';
import type { ContentClient } from './containerd-api/generated/types/containerd/services/content/v1/Content.ts';
import type { EventsClient } from './containerd-api/generated/types/containerd/services/events/v1/Events.ts';
import type { ImagesClient } from './containerd-api/generated/types/containerd/services/images/v1/Images.ts';
import type { LeasesClient } from './containerd-api/generated/types/containerd/services/leases/v1/Leases.ts';
import type { NamespacesClient } from './containerd-api/generated/types/containerd/services/namespaces/v1/Namespaces.ts';
import type { SnapshotsClient } from './containerd-api/generated/types/containerd/services/snapshots/v1/Snapshots.ts';
import type { TasksClient } from './containerd-api/generated/types/containerd/services/tasks/v1/Tasks.ts';
import type { VersionClient } from './containerd-api/generated/types/containerd/services/version/v1/Version.ts';
import type { TaskExit__Output } from './containerd-api/generated/types/containerd/events/TaskExit.ts';
import type { Options as RuncOptionsMessage } from './containerd-api/generated/types/containerd/runc/v1/Options.ts';

/** The typed client of each containerd service the tenant service uses. */
export interface ServiceClients {
  containers: ContainersClient;
  tasks: TasksClient;
  namespaces: NamespacesClient;
  events: EventsClient;
  images: ImagesClient;
  content: ContentClient;
  snapshots: SnapshotsClient;
  leases: LeasesClient;
  version: VersionClient;
}
export type ServiceName = keyof ServiceClients;

type ContainerdApi = ContainersApi & ContentApi & EventsApi & ImagesApi & LeasesApi & NamespacesApi & SnapshotsApi & TasksApi & VersionApi;

// The options the types were generated with (scripts/gen-containerd-api.mjs): field names as in
// the .proto, 64-bit integers as numbers, enums as their names, defaults filled in.
const LOAD_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

/** One client per containerd service, all on one channel to the socket. */
export function connectServices(address: string): ServiceClients {
  const api = grpc.loadPackageDefinition(protoLoader.fromJSON(containerdDescriptor, LOAD_OPTIONS)) as unknown as ContainerdApi;
  const s = api.containerd.services;
  const target = `unix://${address}`;
  const creds = grpc.credentials.createInsecure();
  const channelOverride = new grpc.Channel(target, creds, {});
  return {
    containers: new s.containers.v1.Containers(target, creds, { channelOverride }),
    tasks: new s.tasks.v1.Tasks(target, creds, { channelOverride }),
    namespaces: new s.namespaces.v1.Namespaces(target, creds, { channelOverride }),
    events: new s.events.v1.Events(target, creds, { channelOverride }),
    images: new s.images.v1.Images(target, creds, { channelOverride }),
    content: new s.content.v1.Content(target, creds, { channelOverride }),
    snapshots: new s.snapshots.v1.Snapshots(target, creds, { channelOverride }),
    leases: new s.leases.v1.Leases(target, creds, { channelOverride }),
    version: new s.version.v1.Version(target, creds, { channelOverride }),
  };
}

let descriptorRoot: protobuf.Root | undefined;
function lookupType(name: string): protobuf.Type {
  descriptorRoot ??= protobuf.Root.fromJSON(containerdDescriptor as protobuf.INamespace);
  return descriptorRoot.lookupType(name);
}

/** The runc v2 shim's options message (containerd.runc.v1.Options), packed as an Any. */
export type RuncOptions = Pick<RuncOptionsMessage, 'binary_name' | 'root'>;

export function packRuncOptions(o: RuncOptions): { type_url: string; value: Buffer } {
  const type = lookupType('containerd.runc.v1.Options');
  return { type_url: 'containerd.runc.v1.Options', value: Buffer.from(type.encode(type.fromObject(o)).finish()) };
}

/** A task's exit (containerd.events.TaskExit) from an event envelope's Any; undefined for other events. */
export function decodeTaskExit(any: { type_url?: string; value?: Uint8Array } | null | undefined): TaskExit__Output | undefined {
  if (any?.type_url === undefined || any.type_url.replace(/^.*\//, '') !== 'containerd.events.TaskExit') return undefined;
  const type = lookupType('containerd.events.TaskExit');
  return type.toObject(type.decode(any.value ?? new Uint8Array()), { longs: Number, defaults: true }) as TaskExit__Output;
}
