// The child that carries a new user namespace while the manager writes its id maps
// (src/host/userns.ts): on x86_64 it shares the manager's memory rather than copying it, and it
// can never run a signal handler of the manager's in that shared memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cloneParkedChild, createUserNamespaceFd, reap } from '../../src/host/userns.ts';
import { loadKoffi } from '../../src/host/koffi-module.ts';

const KCMP_SYSCALL_X64 = 312;
const KCMP_VM = 1;
const SIGKILL_BIT = 1n << 8n;
const SIGSTOP_BIT = 1n << 18n;
// glibc's own SIGCANCEL (32) and SIGSETXID (33), which sigprocmask never blocks: glibc sends
// them only to threads of its own process, never to this child.
const GLIBC_INTERNAL_BITS = (1n << 31n) | (1n << 32n);

/** kcmp(2) of two processes' address spaces: 0 when they are one and the same. */
function sameAddressSpace(a: number, b: number): boolean {
  const syscall = loadKoffi().load('libc.so.6').func('long syscall(long number, ...)');
  const r = Number(syscall(KCMP_SYSCALL_X64, 'int', a, 'int', b, 'int', KCMP_VM, 'unsigned long', 0, 'unsigned long', 0));
  if (r < 0) throw new Error('kcmp failed');
  return r === 0;
}

function blockedSignals(statusFile: string): bigint {
  const hex = /^SigBlk:\s*([0-9a-f]+)$/m.exec(readFileSync(statusFile, 'utf8'))?.[1];
  if (hex === undefined) throw new Error(`no SigBlk in ${statusFile}`);
  return BigInt(`0x${hex}`);
}

function withParkedChild(fn: (pid: number) => void): void {
  const pid = cloneParkedChild();
  assert.ok(pid > 0, 'clone of the namespace holder failed');
  try {
    fn(pid);
  } finally {
    reap(pid);
  }
}

test('the namespace holder shares the manager\'s memory instead of copying it (x86_64)', { skip: process.arch !== 'x64' && 'pause(2) is x86_64 only' }, () => {
  withParkedChild((pid) => assert.equal(sameAddressSpace(process.pid, pid), true));
});

test('the namespace holder blocks every signal it can, so no handler of the manager runs in it', { skip: process.arch !== 'x64' && 'pause(2) is x86_64 only' }, () => {
  withParkedChild((pid) => {
    // SIGKILL and SIGSTOP cannot be blocked; the kernel leaves them out of the mask.
    assert.equal(blockedSignals(`/proc/${pid}/status`) | SIGKILL_BIT | SIGSTOP_BIT | GLIBC_INTERNAL_BITS, (1n << 64n) - 1n);
  });
});

const OWN_STATUS = `/proc/self/task/${process.pid}/status`;
// Before any test here clones: a broken restore in one of them must not hide from the last one.
const MASK_AT_START = blockedSignals(OWN_STATUS);

test('creating a namespace leaves the calling thread\'s signal mask as it was', () => {
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  createUserNamespaceFd(map, map);
  assert.equal(blockedSignals(OWN_STATUS), MASK_AT_START);
});
