// A private containerd with its CRI plugin enabled, and a client of the real CRI gRPC API
// (Kubernetes' runtime.v1, ../shared/cri-api/api.proto) through @grpc/grpc-js: what a kubelet
// does, without a kubelet. CNI: Debian's plugins, a bridge on a private subnet that exists only on
// this machine (no traffic leaves it; the tests only exec inside the pods).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startContainerd, type ContainerdDaemon, type CriOptions, type LaunchOptions } from './containerd.ts';
import { ensureContainerdImage } from './images.ts';
import { ensureDebianOciTar } from './debian-images.ts';
import { ensurePauseImageTar } from './pause-image.ts';
import { REPO_ROOT, rigDirs } from './paths.ts';

/** Made like Kubernetes' pause image (pause-image.ts). */
export const PAUSE_IMAGE = 'docker.io/library/sysrunc-pause:static';
export const APP_IMAGE = 'docker.io/library/bb:local';
/** The Debian Docker-in-Docker image of test/rig/debian-images.ts, for pods that run dockerd. */
export const DIND_IMAGE = 'docker.io/library/sysrunc-dind:local';
/** The Debian image whose init is systemd (test/rig/debian-images.ts). */
export const SYSTEMD_IMAGE = 'docker.io/library/sysrunc-systemd:local';
const CNI_BIN_DIR = '/usr/lib/cni';
const BRIDGE = 'srt-cri0';

type Message = Record<string, unknown>;
type Unary = (request: Message, callback: (err: grpc.ServiceError | null, response: Message) => void) => void;

export interface CriClient {
  /** A RuntimeService call by its proto name (RunPodSandbox, CreateContainer, ...). */
  runtime(method: string, request: Message): Promise<Message>;
  close(): void;
}

export interface CriRig {
  readonly containerd: ContainerdDaemon;
  readonly cri: CriClient;
  readonly logDir: string;
  stop(): Promise<void>;
}

export function criClient(address: string): CriClient {
  // ../shared beside the checkout; SYSRUNC_CRI_PROTO (the file) or SYSRUNC_SHARED_DIR names it for a checkout elsewhere.
  const definition = protoLoader.loadSync(process.env['SYSRUNC_CRI_PROTO'] ?? path.join(process.env['SYSRUNC_SHARED_DIR'] ?? path.join(REPO_ROOT, '..', 'shared'), 'cri-api', 'api.proto'), {
    keepCase: true,
    longs: Number,
    enums: Number,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
  const client = new pkg.runtime.v1.RuntimeService(`unix://${address}`, grpc.credentials.createInsecure());
  return {
    runtime(method, request) {
      const fn = (client as unknown as Record<string, Unary>)[method];
      if (fn === undefined) return Promise.reject(new Error(`CRI RuntimeService has no method ${method}`));
      return new Promise((resolve, reject) => fn.call(client, request, (err, response) => (err ? reject(new Error(`${method}: ${err.details || err.message}`)) : resolve(response))));
    },
    close: () => client.close(),
  };
}

/** OCI image tars to import instead of building them (the stack VMs, which have no cache to build from). */
export interface CriRigImages {
  readonly pauseTar: string;
  readonly appTar: string;
}

/**
 * Starts containerd with CRI (handlers runc and, named here, others), CNI and the pause image;
 * given `images`, only the pause and busybox images, from those tars.
 */
export async function startCriRig(
  name: string,
  handlers: Readonly<Record<string, string>>,
  env: Record<string, string>,
  options: Pick<CriOptions, 'containerAnnotations'> & Pick<LaunchOptions, 'prepare'> & { readonly images?: CriRigImages; readonly startTimeoutMs?: number } = {},
): Promise<CriRig> {
  const { images, prepare, startTimeoutMs, ...criOptions } = options;
  const d = rigDirs(name);
  // Beside the rig's run dir, not in it: starting containerd wipes that first.
  const cniConfDir = `${d.run}.cni`;
  mkdirSync(cniConfDir, { recursive: true });
  // host-local's address reservations, in the rig's own dir (not /var/lib/cni/networks); none of
  // this rig's pods can be running now (its containerd is not), so stale ones go.
  const ipamDir = path.join(cniConfDir, 'ipam');
  rmSync(ipamDir, { recursive: true, force: true });
  // A bridge of this rig's own, on a subnet only this machine has; no masquerading, no gateway.
  writeFileSync(
    path.join(cniConfDir, '10-sysrunc-test.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: `sysrunc-${name}`,
      plugins: [
        { type: 'bridge', bridge: BRIDGE, isGateway: false, ipMasq: false, ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '10.231.77.0/24' }]] } },
        { type: 'loopback' },
      ],
    }),
  );
  const containerd = await startContainerd({
    name,
    namespace: 'k8s.io',
    env,
    ...(startTimeoutMs === undefined ? {} : { startTimeoutMs }),
    ...(prepare === undefined ? {} : { prepare }),
    cri: { cniConfDir, cniBinDir: CNI_BIN_DIR, sandboxImage: PAUSE_IMAGE, handlers, ...criOptions },
  });
  try {
    if (images !== undefined) {
      await ensureContainerdImage(containerd, PAUSE_IMAGE, undefined, () => Promise.resolve(images.pauseTar));
      await ensureContainerdImage(containerd, APP_IMAGE, undefined, () => Promise.resolve(images.appTar));
    } else {
      await ensureContainerdImage(containerd, PAUSE_IMAGE, undefined, () => ensurePauseImageTar(PAUSE_IMAGE));
      await ensureContainerdImage(containerd, APP_IMAGE);
      await ensureContainerdImage(containerd, DIND_IMAGE, undefined, () => ensureDebianOciTar('dind', DIND_IMAGE));
      await ensureContainerdImage(containerd, SYSTEMD_IMAGE, undefined, () => ensureDebianOciTar('systemd', SYSTEMD_IMAGE));
    }
  } catch (err) {
    await containerd.stop();
    throw err;
  }
  const cri = criClient(containerd.address);
  const logDir = path.join(d.lib, 'pod-logs');
  mkdirSync(logDir, { recursive: true });
  return {
    containerd,
    cri,
    logDir,
    async stop() {
      cri.close();
      await containerd.stop();
      // The bridge CNI made on the host; gone with the last pod's veth only if we remove it.
      spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
    },
  };
}
