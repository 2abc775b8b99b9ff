// The pod sandbox image of the CRI rigs, made like Kubernetes' pause image: one layer holding a
// single static binary, /pause (assets/pause/pause.c), run as user 65535. No /proc, /dev, /sys or
// /etc: runc's init has to find or make every mount point, as it does for the real image.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execTool } from './exec.ts';
import { cacheDir } from './paths.ts';
import { writeOciImageTar } from './images.ts';

const SOURCE = fileURLToPath(new URL('./assets/pause/pause.c', import.meta.url));

/** The image tar named `ref` (cached under the test cache, keyed by the source's hash). */
export async function ensurePauseImageTar(ref: string, dir: string = cacheDir()): Promise<string> {
  const hash = createHash('sha256').update(await readFile(SOURCE)).digest('hex').slice(0, 12);
  const out = path.join(dir, `oci-pause-${hash}-${ref.replace(/[^A-Za-z0-9_.-]+/g, '_')}.tar`);
  if (await stat(out).then(() => true, () => false)) return out;
  const work = path.join(dir, `pause-${hash}.tmp-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  try {
    await mkdir(path.join(work, 'tree'), { recursive: true });
    await execTool('gcc', ['-static', '-Os', '-Wall', '-Werror', '-o', path.join(work, 'tree', 'pause'), SOURCE], process.env);
    const layer = path.join(work, 'layer.tar');
    await execTool('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', path.join(work, 'tree'), '-cf', layer, 'pause'], process.env);
    const tmp = `${out}.tmp-${process.pid}`;
    await writeOciImageTar(layer, tmp, ref, ['/pause'], '65535:65535');
    await rename(tmp, out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return out;
}

