// Store-volume sync benchmark: approaches x data-set sizes, sync-in (image rootfs on overlayfs ->
// volume, ids +base) and sync-out (volume -> a fresh rootfs on overlayfs, ids -base).
//
//   node --import tsx bench/volume-sync.ts [--sizes 0,100,1024] [--reps 3] [--only cp,sysrunc]
//                                          [--fs loop|here] [--dir /var/tmp/sysrunc-bench-volume-sync]
//
// --fs loop (default) gives every single measurement a fresh ext4 on a loop device (no inode
// allocator slowed down by earlier deletions, no journal shared with other work on the machine);
// --fs here runs in --dir on whatever filesystem that is.
//
// Warm page cache (the data set was just written); `sync` runs before every measurement so earlier
// writeback does not leak into it, and the times exclude writeback of the copy itself (no fsync:
// neither Docker nor sysrunc fsync a sync). Needs root (overlayfs and idmapped mounts).
import { spawnSync } from 'node:child_process';
import {
  chmodSync, closeSync, fstatSync, lchownSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, rmdirSync, writeSync,
} from 'node:fs';
import path from 'node:path';
import { copyTree } from '../src/manager/volumes/copy-tree.ts';
import { unchangedSince } from '../src/manager/volumes/copy-out.ts';
import { S_IFDIR, S_IFLNK, S_IFMT, lstatx } from '../src/host/fs-native.ts';
import { openUnshiftedView, withUnshiftedView, type IdRange } from '../src/manager/volumes/shift-view.ts';
import { libc } from '../src/host/libc.ts';
import { makePrivate, moveMountTo, unmount } from '../src/host/mount.ts';
import { makeDataset, makeSpecialTree } from '../test/fixtures/volumes/tree.ts';

const IDS: IdRange = { uid: 268435456, gid: 268435456, size: 65536 };

interface Approach {
  name: string;
  note: string;
  /** Copies the contents of src into dst (exists, empty); `shift` = +1 into a volume, -1 out of it. */
  run(src: string, dst: string, shift: 1 | -1): Promise<void>;
  /** Only between plain directories on one filesystem. */
  plainDirsOnly?: boolean;
  /** A later sync-out onto the target an earlier one (from..to ms) filled; absent: a full copy again. */
  again?(src: string, dst: string, prev: { startMs: number; endMs: number }): Promise<void>;
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${(r.stderr ?? '').split('\n').slice(0, 3).join(' | ')}`);
}

/**
 * src/dst of a sync as external tools see them: the volume side through the unshifted view,
 * attached at a real mount point (a /proc/<pid>/fd path is not safe for them: rsync chdir()s
 * into it, getcwd() says "/" for a detached mount, and it writes into the host's /).
 */
async function viaView(src: string, dst: string, shift: 1 | -1, fn: (s: string, d: string) => void | Promise<void>): Promise<void> {
  const volume = shift === 1 ? dst : src;
  const mp = path.join(path.dirname(volume), 'view');
  mkdirSync(mp);
  const fd = openUnshiftedView(volume, IDS);
  try {
    moveMountTo(fd, mp);
  } finally {
    libc().close(fd);
  }
  try {
    makePrivate(mp);
    await fn(shift === 1 ? src : mp, shift === 1 ? mp : dst);
  } finally {
    unmount(mp, { detach: true });
    rmdirSync(mp);
  }
}

/** Userspace id shift as a separate pass (what a copy without idmapped mounts needs). */
function shiftPass(root: string, delta: number): void {
  const walk = (p: Buffer, top: boolean): void => {
    const st = lstatx(p, p.toString());
    const type = st.mode & S_IFMT;
    if (type === S_IFDIR) for (const n of readdirSync(p, { encoding: 'buffer' })) walk(Buffer.concat([p, Buffer.from('/'), n]), false);
    if (top) return; // the caller's directory, already owned right
    lchownSync(p, st.uid + delta, st.gid + delta);
    // chown cleared set-id bits; file capabilities and ACL entries stay wrong (not shifted) here.
    if (type !== S_IFLNK && (st.mode & 0o6000) !== 0) chmodSync(p, st.mode & 0o7777);
  };
  walk(Buffer.from(root), true);
}

const APPROACHES: Approach[] = [
  {
    name: 'rsync',
    note: 'rsync -aHAXS --numeric-ids, through the idmapped view',
    run: (s, d, shift) => viaView(s, d, shift, (a, b) => sh('rsync', ['-aHAXS', '--numeric-ids', `${a}/`, `${b}/`])),
    again: (s, d) => viaView(s, d, -1, (a, b) => sh('rsync', ['-aHAXS', '--numeric-ids', '--delete', `${a}/`, `${b}/`])),
  },
  {
    name: 'cp',
    note: 'cp -a, through the idmapped view',
    run: (s, d, shift) => viaView(s, d, shift, (a, b) => sh('cp', ['-a', `${a}/.`, `${b}/`])),
  },
  {
    name: 'cp+chown',
    note: 'cp -a, then a userspace chown-by-offset pass (no idmapped mount)',
    run: async (s, d, shift) => {
      sh('cp', ['-a', `${s}/.`, `${d}/`]);
      shiftPass(d, shift * IDS.uid);
    },
  },
  {
    name: 'tar',
    note: 'tar c | tar x with --xattrs --acls --sparse, through the idmapped view',
    run: (s, d, shift) => viaView(s, d, shift, (a, b) => sh('sh', ['-c',
      `tar -C '${a}' -cf - --sparse --xattrs --xattrs-include='*' --acls --numeric-owner . | ` +
      `tar -C '${b}' -xf - --xattrs --xattrs-include='*' --acls --numeric-owner --same-owner -p`])),
  },
  {
    name: 'rename+chown',
    note: 'rename(2) of the top-level entries, then a userspace chown pass (plain dirs on one fs only)',
    plainDirsOnly: true,
    run: async (s, d, shift) => {
      for (const n of readdirSync(s)) renameSync(path.join(s, n), path.join(d, n));
      shiftPass(d, shift * IDS.uid);
    },
  },
  {
    name: 'sysrunc',
    note: 'copyTree (one pass, in-kernel data copy, sparse-aware), through the idmapped view',
    run: (s, d, shift) =>
      withUnshiftedView(shift === 1 ? d : s, IDS, async (view) => {
        await copyTree(shift === 1 ? s : view, shift === 1 ? view : d, {
          srcLabel: s, dstLabel: d, hooks: { onRejectedWhiteout: () => undefined },
        });
      }),
    again: (s, d, prev) =>
      withUnshiftedView(s, IDS, async (view) => {
        await copyTree(view, d, { srcLabel: s, dstLabel: d, hooks: { onRejectedWhiteout: () => undefined }, unchanged: unchangedSince(prev) });
      }),
  },
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

function mountOverlay(dir: string, lower: string): string {
  for (const d of ['upper', 'work', 'merged']) mkdirSync(path.join(dir, d), { recursive: true });
  sh('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${dir}/upper,workdir=${dir}/work`, `${dir}/merged`]);
  return `${dir}/merged`;
}

function countEntries(dir: string): number {
  let n = 0;
  const walk = (p: string): void => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      n++;
      if (e.isDirectory()) walk(path.join(p, e.name));
    }
  };
  walk(dir);
  return n;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  sh('sync', []);
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function fmt(ms: number | string): string {
  if (typeof ms === 'string') return ms;
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

/** Can the approach write overlay whiteouts (char 0/0) into a rootfs on overlayfs? */
async function whiteoutCheck(a: Approach, work: string): Promise<string> {
  if (a.plainDirsOnly) return 'n/a';
  const vol = path.join(work, 'wh-vol');
  mkdirSync(vol);
  lchownSync(vol, IDS.uid, IDS.gid);
  const img = path.join(work, 'wh-img');
  makeSpecialTree(img);
  await APPROACHES.find((x) => x.name === 'sysrunc')!.run(img, vol, 1);
  const base = path.join(work, 'wh-lower');
  mkdirSync(base);
  const merged = mountOverlay(path.join(work, 'wh-ovl'), base);
  try {
    const dst = path.join(merged, 'dst');
    mkdirSync(dst);
    await a.run(vol, dst, -1);
    return 'ok';
  } catch (err) {
    return /Operation not permitted|EPERM/.test(String(err)) ? 'EPERM' : 'error';
  } finally {
    sh('umount', [merged]);
  }
}

interface Sample {
  inMs: number[];
  outMs: number[];
  againMs: number[];
  failures: string[];
  whiteouts: string;
}

/** One sync-in and one sync-out of approach a on the prepared data set; throws nothing. */
async function measure(a: Approach, set: string, imageRootfs: string, image: string, entries: number, sample: Sample): Promise<void> {
  const work = path.join(set, a.name);
  mkdirSync(work);
  const unmounts: string[] = [];
  try {
    const vol = path.join(work, 'volume');
    mkdirSync(vol);
    lchownSync(vol, IDS.uid, IDS.gid);
    let src = path.join(imageRootfs, 'var/lib/docker');
    if (a.plainDirsOnly) {
      src = path.join(work, 'plain-image');
      sh('cp', ['-a', path.join(image, 'var/lib/docker'), src]);
    }
    const inMs = await timed(() => a.run(src, vol, 1));
    if (countEntries(vol) !== entries) throw new Error(`sync-in: ${countEntries(vol)} entries, want ${entries}`);
    const lower = path.join(work, 'lower');
    mkdirSync(path.join(lower, 'var/lib'), { recursive: true });
    let target: string;
    if (a.plainDirsOnly) {
      target = path.join(work, 'rootfs-plain/var/lib/docker');
    } else {
      const merged = mountOverlay(path.join(work, 'rootfs'), lower);
      unmounts.push(merged);
      target = path.join(merged, 'var/lib/docker');
    }
    mkdirSync(target, { recursive: true });
    // The container runs a while between create and stop; an incremental sync-out trusts only
    // entries older than the previous sync-out by a margin.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const startMs = Date.now();
    const outMs = await timed(() => a.run(vol, target, -1));
    const endMs = Date.now();
    if (countEntries(target) !== entries) throw new Error(`sync-out: ${countEntries(target)} entries, want ${entries}`);
    sample.inMs.push(inMs);
    sample.outMs.push(outMs);
    if (a.again !== undefined) {
      touchEveryHundredthFile(vol);
      const again = a.again;
      sample.againMs.push(await timed(() => again(vol, target, { startMs, endMs })));
      if (countEntries(target) !== entries) throw new Error(`sync-out again: ${countEntries(target)} entries, want ${entries}`);
    }
  } catch (err) {
    sample.failures.push(String(err).slice(0, 100));
  } finally {
    for (const m of unmounts) sh('umount', [m]);
  }
}

/** What a restarted container does to its volume: rewrites some files (here 1%, same size). */
function touchEveryHundredthFile(root: string): void {
  let n = 0;
  const walk = (p: string): void => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const c = path.join(p, e.name);
      if (e.isDirectory()) walk(c);
      else if (e.isFile() && n++ % 100 === 0) {
        const fd = openSync(c, 'r+');
        try {
          writeSync(fd, Buffer.from('changed'), 0, Math.min(7, fstatSync(fd).size), 0);
        } finally {
          closeSync(fd);
        }
      }
    }
  };
  walk(root);
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function cell(xs: number[]): string {
  if (xs.length === 0) return 'fail';
  if (xs.length === 1) return fmt(xs[0] ?? NaN);
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})`;
}

/** The host's / must not change: a tool misled about its cwd writes there (see viaView). */
function rootCanary(): () => void {
  const before = readdirSync('/').sort().join(',');
  return () => {
    const after = readdirSync('/').sort().join(',');
    if (after !== before) throw new Error(`bench wrote into the host's /: was [${before}], now [${after}]`);
  };
}

/** A fresh ext4 on a loop device per measurement (--fs loop), or a directory below --dir. */
interface Fs {
  root: string;
  cleanup(): void;
}

function freshFs(mode: string, base: string, name: string): Fs {
  const dir = path.join(base, name);
  mkdirSync(dir, { recursive: true });
  if (mode !== 'loop') return { root: dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  // Its own journal and inode tables: ext4 makes inode allocation slow for a while after many
  // deletions (recently_deleted() shows up at the top of a profile), which would charge one
  // approach for the clean-up of the one before it.
  const img = `${dir}.img`;
  sh('truncate', ['-s', '10G', img]);
  sh('mkfs.ext4', ['-q', '-F', img]);
  sh('mount', ['-o', 'loop', img, dir]);
  return {
    root: dir,
    cleanup: () => {
      sh('umount', [dir]);
      rmSync(img, { force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const sizes = (arg('sizes') ?? '0,100,1024').split(',').map(Number);
  const reps = Number(arg('reps') ?? '3');
  const only = arg('only')?.split(',');
  const approaches = APPROACHES.filter((a) => only === undefined || only.includes(a.name));
  const fsMode = arg('fs') ?? 'loop';
  const base = arg('dir') ?? '/var/tmp/sysrunc-bench-volume-sync';
  const checkRoot = rootCanary();
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const rows: string[][] = [];
  const whiteouts = new Map<string, string>();
  try {
    for (const a of approaches) {
      const fs = freshFs(fsMode, base, `wh-${a.name}`);
      try {
        whiteouts.set(a.name, await whiteoutCheck(a, fs.root));
      } finally {
        fs.cleanup();
      }
      checkRoot();
    }
    for (const mb of sizes) {
      const samples = new Map(approaches.map((a) => [a.name, { inMs: [], outMs: [], againMs: [], failures: [], whiteouts: '' } as Sample]));
      let entries = 0;
      for (let rep = 0; rep < reps; rep++) {
        // Rotate the order so that background load hits every approach alike.
        const order = approaches.map((_, i) => approaches[(i + rep) % approaches.length]!);
        for (const a of order) {
          const fs = freshFs(fsMode, base, `${mb}-${rep}-${a.name}`);
          let imageRootfs: string | undefined;
          try {
            const image = path.join(fs.root, 'image');
            // No whiteouts in the data set: the image's own overlayfs would interpret them.
            const stats = makeDataset(path.join(image, 'var/lib/docker'), { bytes: mb * 1024 * 1024, overlayMarkers: false });
            imageRootfs = mountOverlay(path.join(fs.root, 'image-ovl'), image);
            entries = countEntries(path.join(image, 'var/lib/docker'));
            if (rep === 0 && a === order[0]) {
              console.error(`data set ${mb} MB: ${stats.files} files, ${entries} entries, ${(stats.bytes / 1048576).toFixed(0)} MB of data`);
            }
            const sample = samples.get(a.name)!;
            await measure(a, fs.root, imageRootfs, image, entries, sample);
            checkRoot();
            console.error(`  ${mb} MB rep ${rep} ${a.name}: in ${fmt(sample.inMs.at(-1) ?? NaN)} out ${fmt(sample.outMs.at(-1) ?? NaN)}` +
              ` again ${fmt(sample.againMs.at(-1) ?? NaN)} ${sample.failures.at(-1) ?? ''}`);
          } finally {
            if (imageRootfs !== undefined) sh('umount', [imageRootfs]);
            fs.cleanup();
          }
        }
      }
      for (const a of approaches) {
        const s = samples.get(a.name)!;
        const again = a.again !== undefined ? cell(s.againMs) : a.plainDirsOnly ? 'as the first' : 'full copy again';
        rows.push([a.name, `${mb} MB (${entries} entries)`, cell(s.inMs), cell(s.outMs), again, s.failures[0] ?? '']);
      }
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  const header = ['approach', 'data', 'sync-in median (min-max)', 'sync-out median (min-max)', 'next sync-out, 1% changed', 'failure'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  console.log(`\n${reps} runs each, order rotated per run. sync-in reads the image through overlayfs; sync-out writes a fresh`);
  console.log('overlayfs rootfs; "next sync-out" syncs out again onto that rootfs after 1% of the files were rewritten.');
  console.log('Whiteouts (char 0/0) in the volume, synced out into an overlayfs rootfs:');
  for (const a of approaches) console.log(`  ${a.name}: ${whiteouts.get(a.name)}  -- ${a.note}`);
}

await main();
