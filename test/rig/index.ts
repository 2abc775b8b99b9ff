// The real-parts test rig: private dockerd/containerd daemons and busybox images. See rig.test.ts.
export {
  startDockerd,
  type DockerClient,
  type DockerDaemon,
  type DockerdOptions,
  type RuntimeEntry,
} from './dockerd.ts';
export { startContainerd, type ContainerdDaemon, type ContainerdOptions, type CtrRunOptions } from './containerd.ts';
export {
  ensureBusyboxRootfs,
  ensureContainerdImage,
  ensureDockerImage,
  ensureOciImageTar,
  ensureRootfsTar,
  makeBundle,
  type Bundle,
  type BundleOptions,
  type CtrClient,
} from './images.ts';
export { dockerCli } from './docker-cli.ts';
export { execTool, type ExecOptions, type ExecResult } from './exec.ts';
export { bins, cacheDir, RIG_LIB_DIR, RIG_RUN_DIR } from './paths.ts';
export { mountsUnder, processesMentioning } from './proc.ts';
export { rigClean } from './safety.ts';
