// sysrunc-ctl status: what sysrunc-mgr holds (its read-only `status` method), as text or --json.
import { ManagerClient } from '../manager-client/client.ts';

function rangeText(r: { start: number; size: number }): string {
  return `${r.start}-${r.start + r.size - 1} (${r.size})`;
}

export async function printStatus(socket: string, json: boolean): Promise<void> {
  const client = await ManagerClient.connect(socket);
  let s;
  try {
    s = await client.call('status', {});
  } finally {
    client.close();
  }
  if (json) return void process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  const out: string[] = [];
  const free = s.ranges.freeUid.reduce((n, r) => n + r.size, 0);
  const pool = s.ranges.uid.reduce((n, r) => n + r.size, 0);
  out.push(`subid mode ${s.mode}: ${pool - free} of ${pool} uids in use, ${s.allocations.length} allocations`);
  out.push(`  pool uid: ${s.ranges.uid.map(rangeText).join(', ') || '(none)'}`);
  out.push(`  free uid: ${s.ranges.freeUid.map(rangeText).join(', ') || '(none)'}`);
  out.push(`containers: ${s.containers.length}`);
  for (const c of s.containers) {
    const m = c.uidMappings[0];
    out.push(`  ${c.id}${c.stopped ? ' (stopped)' : ''}: uid ${m === undefined ? '-' : `${m.hostID}+${m.size}`}, ownership ${c.ownership === undefined ? '-' : `${c.ownership.mode} (${c.ownership.reason})`}`);
    for (const a of c.actions) out.push(`    ${a.kind}${'target' in a ? ` ${a.target}` : ''}`);
  }
  out.push(`store volumes: ${s.volumes.length}`);
  for (const v of s.volumes) out.push(`  ${v.id} ${v.mountpoint} -> ${v.hostDir} (${v.mode}, ${v.bytes} bytes)`);
  if (s.lxcfs !== undefined) {
    const l = s.lxcfs;
    out.push(`lxcfs: ${l.state}${l.pid === undefined ? '' : ` (pid ${l.pid})`}, ${l.binary} on ${l.mountpoint}, restarts ${l.restarts}, view layers ${l.layers}${l.message === undefined ? '' : `: ${l.message}`}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}
