// features: runc's own answer, with what sysrunc adds merged over it. Only what is true is claimed:
// - linux.namespaces gains "user" and "cgroup" (every sysrunc container gets both);
// - linux.mountExtensions.idmap.enabled stays runc's: a mount that carries its own
//   uidMappings/gidMappings (or "idmap"/"ridmap") is passed to runc unchanged, so whether those
//   work is runc's to say (runc 1.1 says nothing: reported as false). sysrunc idmaps the rootfs
//   itself, and bind sources too unless runc says it can (the manager reads the same answer:
//   spec-transform/runtime-features.ts);
// - annotations name sysrunc's version and the io.sysrunc.* settings it accepts.
import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import type { Invocation } from '../../oci/invocation.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { SysruncError } from '../../common/errors.ts';
import { SYSRUNC_VERSION } from '../../common/version.ts';
import { SETTING_NAMES } from '../../spec-transform/settings.ts';

type Json = Record<string, unknown>;

export function featuresCommand(inv: Invocation): number {
  const runtime = resolveRuntimeBinary(loadSysruncConfig().runtime);
  const result = spawnSync(runtime, inv.argv, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (result.status !== 0) return result.status ?? 1;
  let runc: Json;
  try {
    runc = JSON.parse(result.stdout) as Json;
  } catch (err) {
    throw new SysruncError(`${runtime} features: invalid JSON: ${(err as Error).message}`);
  }
  writeSync(1, `${JSON.stringify(mergeFeatures(runc), null, 4)}\n`);
  return 0;
}

export function mergeFeatures(runc: Json): Json {
  const linux = { ...((runc.linux as Json | undefined) ?? {}) };
  const namespaces = Array.isArray(linux.namespaces) ? [...(linux.namespaces as string[])] : [];
  for (const ns of ['user', 'cgroup']) if (!namespaces.includes(ns)) namespaces.push(ns);
  linux.namespaces = namespaces;
  const extensions = { ...((linux.mountExtensions as Json | undefined) ?? {}) };
  if (extensions.idmap === undefined) extensions.idmap = { enabled: false };
  linux.mountExtensions = extensions;
  const annotations = {
    ...((runc.annotations as Record<string, string> | undefined) ?? {}),
    'io.sysrunc.version': SYSRUNC_VERSION,
    'io.sysrunc.settings': SETTING_NAMES.map((n) => `io.sysrunc.${n}`).join(','),
  };
  return { ...runc, linux, annotations };
}
