// exec: a process exec'd into a system container gets the capabilities its init got (Docker
// builds exec process specs from its own defaults, knowing nothing of sysrunc). bin/sysrunc comes
// here only for containers whose manager hint says so, and only with --process (what containerd
// and dockerd use); it execs runc itself afterwards. Anything unexpected leaves the process file
// as the caller wrote it: runc reports its own errors.
import { readFileSync } from 'node:fs';
import type { Invocation } from '../../oci/invocation.ts';
import { parseExecArgs } from '../../oci/exec-args.ts';
import { parseLossless } from '../../oci/json-lossless.ts';
import { writeFileAtomic } from '../../common/atomic-file.ts';
import type { Process } from '../../oci/spec.ts';
import { systemProcess } from '../../spec-transform/system-capabilities.ts';
import { callerPid } from '../caller.ts';
import { boundingSetOf } from '../../host/bounding-set.ts';

export function execCommand(inv: Invocation): number {
  const processFile = parseExecArgs(inv.commandArgs)?.processFile;
  if (processFile === undefined) return 0;
  let doc;
  try {
    doc = parseLossless(readFileSync(processFile, 'utf8'));
  } catch {
    return 0;
  }
  // runc exec runs as bin/sysrunc's process: its bounding set is what runc can grant.
  const granted = systemProcess(doc.value as Process, boundingSetOf(callerPid()));
  writeFileAtomic(processFile, doc.stringify(granted), { mode: 0o600, durable: false });
  return 0;
}
