// exec: a process exec'd into a system container gets the capabilities its init got (Docker
// builds exec process specs from its own defaults, knowing nothing of sysrunc). Only the
// --process form (what containerd and dockerd use) is rewritten; everything else passes through.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Invocation } from '../../oci/invocation.ts';
import { parseExecArgs } from '../../oci/exec-args.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { queryContainerState } from '../../oci/runtime-state.ts';
import { parseLossless } from '../../oci/json-lossless.ts';
import { writeFileAtomic } from '../../fs/atomic-file.ts';
import type { Process, Spec } from '../../oci/spec.ts';
import { readSettings } from '../../spec-transform/settings.ts';
import { systemProcess } from '../../spec-transform/system-capabilities.ts';
import { ownBoundingSet } from '../../spec-transform/gather-facts.ts';
import { execReplace } from '../../host/exec.ts';
import { CONFIG_NAME } from '../../oci/bundle.ts';

export function execCommand(inv: Invocation): never {
  const runtime = resolveRuntimeBinary(loadSysruncConfig().runtime);
  const args = parseExecArgs(inv.commandArgs);
  if (args?.processFile !== undefined) grantSystemCapabilities(runtime, inv.globals.root, args.id, args.processFile);
  return execReplace(runtime, [runtime, ...inv.argv], process.env);
}

function grantSystemCapabilities(runtime: string, root: string | undefined, id: string, processFile: string): void {
  const state = queryContainerState(runtime, root, id);
  // Anything unexpected: leave the process as the caller wrote it; runc reports its own errors.
  if (state.kind !== 'present') return;
  let spec: Spec;
  let processDoc;
  try {
    spec = JSON.parse(readFileSync(path.join(state.state.bundle, CONFIG_NAME), 'utf8')) as Spec;
    processDoc = parseLossless(readFileSync(processFile, 'utf8'));
  } catch {
    return;
  }
  const settings = readSettingsOrDefault(spec);
  if (settings === undefined || !settings.systemContainer || settings.capabilities !== 'all') return;
  const granted = systemProcess(processDoc.value as Process, ownBoundingSet());
  writeFileAtomic(processFile, processDoc.stringify(granted), { mode: 0o600 });
}

function readSettingsOrDefault(spec: Spec) {
  try {
    return readSettings(spec);
  } catch {
    return undefined;
  }
}
