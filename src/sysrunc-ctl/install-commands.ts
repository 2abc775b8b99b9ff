// sysrunc-ctl install|uninstall docker|containerd: registers sysrunc as a runtime of an existing
// engine (daemon.json's runtimes, or containerd's CRI runtime handler), idempotent, with --dry-run
// (the diff) and --root (a node's root elsewhere: tests, the Kubernetes installer).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { addDockerRuntime, EngineConfigError, removeDockerRuntime, validateDockerConfig } from './engine-install/docker-config.ts';
import { declaredVersion, planContainerdInstall, planContainerdUninstall, validateContainerdPlan, type ConfigVersion } from './engine-install/containerd-config.ts';
import { applyChanges, diffOf, readIfExists, readRecord, recordNodePath, sha256, underRoot, type FileChange, type InstallRecord } from './engine-install/apply.ts';
import { checkHost, type HostProbeInputs } from './engine-install/host-checks.ts';

export type Engine = 'docker' | 'containerd';
export interface InstallOptions {
  root: string;
  config?: string;
  name: string;
  runtimePath: string;
  configVersion?: string;
  dryRun?: boolean;
  restart?: boolean;
  /** Where the kernel's facts are read (not on the command line: tests simulate other kernels). */
  probes?: HostProbeInputs;
}

const DEFAULT_CONFIG: Record<Engine, string> = { docker: '/etc/docker/daemon.json', containerd: '/etc/containerd/config.toml' };

let say = (line: string): void => void process.stdout.write(`${line}\n`);
/** Where the one-line reports go (tests collect them). */
export function setReporter(report: (line: string) => void): void {
  say = report;
}

/** containerd's config version for a node without config.toml: --config-version, or its binary's. */
function versionForNewConfig(o: InstallOptions): ConfigVersion {
  if (o.configVersion === '2' || o.configVersion === '3') return Number(o.configVersion) as ConfigVersion;
  if (o.configVersion !== undefined) throw new EngineConfigError(`--config-version ${o.configVersion}: 2 (containerd 1.6/1.7) or 3 (containerd 2.x)`);
  const bin = ['/usr/bin/containerd', '/usr/local/bin/containerd'].map((p) => underRoot(o.root, p)).find((p) => existsSync(p));
  const out = bin === undefined ? '' : spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  const m = /\sv?(\d+)\.\d+/.exec(out);
  if (m === null) throw new EngineConfigError(`there is no ${o.config ?? DEFAULT_CONFIG.containerd} and containerd's version is unknown: pass --config-version 2 (containerd 1.6/1.7) or 3 (2.x)`);
  return Number(m[1]) >= 2 ? 3 : 2;
}

function restartAdvice(engine: Engine, o: InstallOptions): void {
  const unit = engine === 'docker' ? 'docker' : 'containerd';
  // dockerd re-reads its runtimes on SIGHUP; containerd reads its config only at start.
  const how = engine === 'docker' ? `systemctl reload ${unit} (or kill -HUP $(pidof dockerd))` : `systemctl restart ${unit}`;
  if (!o.restart) return say(`sysrunc-ctl: ${engine === 'docker' ? 'reload' : 'restart'} ${unit} to use it: ${how}`);
  if (o.root !== '/') throw new EngineConfigError(`--restart with --root ${o.root}: restart ${unit} on that node yourself`);
  if (!existsSync('/run/systemd/system')) throw new EngineConfigError(`--restart: systemd is not running here; ${engine === 'docker' ? 'send dockerd SIGHUP' : 'restart containerd'} yourself`);
  execFileSync('systemctl', [engine === 'docker' ? 'reload' : 'restart', unit], { stdio: 'inherit' });
  say(`sysrunc-ctl: ${engine === 'docker' ? 'reloaded' : 'restarted'} ${unit}`);
}

export function installRuntime(engine: Engine, o: InstallOptions): void {
  checkHost(o.root, o.probes);
  const config = o.config ?? DEFAULT_CONFIG[engine];
  const before = readIfExists(underRoot(o.root, config));
  const changes: FileChange[] = [];
  let dropIn: string | undefined;
  if (engine === 'docker') {
    const text = addDockerRuntime(config, before, o.name, o.runtimePath);
    if (text !== undefined) {
      validateDockerConfig(config, text, o.name, o.runtimePath);
      changes.push({ node: config, text });
    }
  } else {
    const version = before === undefined ? versionForNewConfig(o) : declaredVersion(config, before);
    const plan = planContainerdInstall(config, before, version, o.name, o.runtimePath);
    if (plan.dropIn !== undefined && readIfExists(underRoot(o.root, plan.dropIn.path)) !== plan.dropIn.text) changes.push({ node: plan.dropIn.path, text: plan.dropIn.text });
    if (plan.main !== undefined) changes.push({ node: config, text: plan.main });
    validateContainerdPlan(config, plan.main ?? before ?? '', plan.dropIn?.text, version, o.name, o.runtimePath);
    dropIn = plan.dropIn?.path;
  }
  if (changes.length === 0) return say(`sysrunc-ctl: ${config} already has runtime ${o.name}: nothing to change`);
  if (o.dryRun) return say(diffOf(o.root, changes).trimEnd());
  const main = changes.find((c) => c.node === config);
  const record: InstallRecord = { config, original: before ?? null, written: main?.text === undefined ? null : sha256(main.text), ...(dropIn !== undefined ? { dropIn } : {}) };
  // The record is written last: a run that failed before leaves no record and no change.
  applyChanges(o.root, [...changes, { node: recordNodePath(config), text: `${JSON.stringify(record, null, 2)}\n` }]);
  say(`sysrunc-ctl: added runtime ${o.name} (${o.runtimePath}) to ${changes.map((c) => c.node).join(' and ')}`);
  restartAdvice(engine, o);
}

export function uninstallRuntime(engine: Engine, o: InstallOptions): void {
  const config = o.config ?? DEFAULT_CONFIG[engine];
  const record = readRecord(o.root, config);
  const now = readIfExists(underRoot(o.root, config));
  const changes: FileChange[] = [];
  if (now !== undefined && record !== undefined && record.written !== null && sha256(now) === record.written) {
    // Untouched since install: the bytes from before it (or no file, as then).
    changes.push({ node: config, text: record.original ?? undefined });
  } else if (now !== undefined) {
    // Edited since (or installed by hand): only sysrunc's entries come out.
    const text = engine === 'docker' ? removeDockerRuntime(config, now, o.name) : planContainerdUninstall(now);
    if (text !== undefined) {
      if (engine === 'docker') validateDockerConfig(config, text, o.name, undefined);
      changes.push({ node: config, text });
    }
  }
  const dropIn = record?.dropIn ?? (engine === 'containerd' ? path.join(path.dirname(config), 'conf.d', `${o.name}.toml`) : undefined);
  if (dropIn !== undefined && readIfExists(underRoot(o.root, dropIn))?.startsWith("# sysrunc's CRI runtime handler") === true) changes.push({ node: dropIn, text: undefined });
  if (changes.length === 0 && record === undefined) return say(`sysrunc-ctl: ${config} has no runtime ${o.name}: nothing to change`);
  if (o.dryRun) return say(diffOf(o.root, changes).trimEnd());
  applyChanges(o.root, [...changes, { node: recordNodePath(config), text: undefined }]);
  say(`sysrunc-ctl: removed runtime ${o.name} from ${changes.map((c) => c.node).join(' and ') || config}`);
  restartAdvice(engine, o);
}

function engineCommand(verb: 'install' | 'uninstall'): Command {
  const cmd = new Command(verb).description(
    verb === 'install' ? 'register sysrunc as a runtime of docker (daemon.json) or containerd (CRI runtime handler)' : 'take sysrunc out of docker\'s or containerd\'s config, as it was before install',
  );
  for (const engine of ['docker', 'containerd'] as const) {
    cmd
      .command(engine)
      .description(`${verb} sysrunc ${verb === 'install' ? 'into' : 'from'} ${DEFAULT_CONFIG[engine]}`)
      .option('--root <dir>', 'the node\'s root directory (config and runc are looked up under it)', '/')
      .option('--config <path>', `the config file, as a path on the node (default ${DEFAULT_CONFIG[engine]})`)
      .option('--name <name>', 'the runtime (handler) name', 'sysrunc')
      .option('--runtime-path <path>', 'sysrunc\'s path on the node', '/usr/bin/sysrunc')
      .addOption(new Option('--config-version <n>', 'containerd config version for a node without config.toml: 2 (1.6/1.7) or 3 (2.x)').hideHelp(engine === 'docker'))
      .option('--dry-run', 'print the diff; change nothing')
      .option('--restart', `${engine === 'docker' ? 'reload dockerd' : 'restart containerd'} (systemd) after the change`)
      .action((o: InstallOptions) => {
        const opts = { ...o, root: path.resolve(o.root) };
        if (verb === 'install') installRuntime(engine, opts);
        else uninstallRuntime(engine, opts);
      });
  }
  return cmd;
}

export function registerInstallCommands(program: Command): void {
  program.addCommand(engineCommand('install'));
  program.addCommand(engineCommand('uninstall'));
}
