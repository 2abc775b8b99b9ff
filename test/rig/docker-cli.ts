// Which docker client to drive a private dockerd with. /usr/local/bin/docker (28.x) shadows the
// distro client on PATH here; the client matching the daemon's version avoids API-negotiation surprises.
import { execTool } from './exec.ts';
import { bins } from './paths.ts';

const CANDIDATES = ['/usr/bin/docker', '/usr/local/bin/docker', '/bin/docker'];
let cached: Promise<string> | undefined;

async function versionOf(bin: string): Promise<string | undefined> {
  const r = await execTool(bin, ['--version'], process.env, { reject: false, timeoutMs: 10_000 }).catch(() => undefined);
  // "Docker version 20.10.24+dfsg1, build 297e128"
  return r?.exitCode === 0 ? /version\s+([^\s,]+)/.exec(r.stdout)?.[1] : undefined;
}

async function pick(): Promise<string> {
  const forced = process.env['SYSRUNC_TEST_DOCKER_CLI'];
  if (forced !== undefined && forced !== '') return forced;
  const daemon = await versionOf(bins.dockerd);
  const found: Array<{ bin: string; version: string }> = [];
  for (const bin of CANDIDATES) {
    const version = await versionOf(bin);
    if (version !== undefined) found.push({ bin, version });
  }
  if (daemon !== undefined) {
    const minor = (v: string): string => v.split('.').slice(0, 2).join('.');
    const match = found.find((f) => f.version === daemon) ?? found.find((f) => minor(f.version) === minor(daemon));
    if (match !== undefined) return match.bin;
  }
  const first = found[0];
  if (first === undefined) throw new Error(`no docker client found (tried ${CANDIDATES.join(', ')}); set SYSRUNC_TEST_DOCKER_CLI`);
  return first.bin;
}

/** Path of the docker client whose version matches `dockerd --version` (SYSRUNC_TEST_DOCKER_CLI overrides). */
export function dockerCli(): Promise<string> {
  cached ??= pick();
  return cached;
}
