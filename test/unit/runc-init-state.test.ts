// readRuncInit (src/oci/runtime-state.ts): the init process runc recorded in <root>/<id>/state.json,
// and whether the container made its own pid and mount namespaces (the exit watch only watches
// those: once such an init exits, nothing of the container is left running).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readRuncInit } from '../../src/oci/runtime-state.ts';

/** runc 1.1's namespaces of a container with its own of everything. */
const OWN = ['NEWNS', 'NEWNET', 'NEWPID', 'NEWIPC', 'NEWUTS', 'NEWUSER'].map((type) => ({ type, path: '' }));

function withState(state: unknown, check: (root: string) => void): void {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sysrunc-runc-state-'));
  try {
    mkdirSync(path.join(root, 'c1'));
    writeFileSync(path.join(root, 'c1', 'state.json'), typeof state === 'string' ? state : JSON.stringify(state));
    check(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('the init pid and start time runc recorded are read, with its own pid and mount namespaces', () => {
  withState({ init_process_pid: 4242, init_process_start: 123456, config: { namespaces: OWN } }, (root) => {
    assert.deepEqual(readRuncInit(root, 'c1'), { pid: 4242, startTime: '123456', ownPidAndMountNamespaces: true });
  });
});

test('a container that joins a pid or a mount namespace by path, or has none of its own, does not have its own', () => {
  for (const [joined, namespaces] of [
    ['pid', OWN.map((ns) => (ns.type === 'NEWPID' ? { type: 'NEWPID', path: '/proc/7/ns/pid' } : ns))],
    ['mount', OWN.map((ns) => (ns.type === 'NEWNS' ? { type: 'NEWNS', path: '/proc/7/ns/mnt' } : ns))],
    ['host pid', OWN.filter((ns) => ns.type !== 'NEWPID')],
  ] as const) {
    withState({ init_process_pid: 4242, init_process_start: 1, config: { namespaces } }, (root) => {
      assert.equal(readRuncInit(root, 'c1')?.ownPidAndMountNamespaces, false, joined);
    });
  }
});

test('a state without the start time has the pid but no start time (the exit watch then leaves it alone)', () => {
  withState({ init_process_pid: 12, config: { namespaces: OWN } }, (root) => {
    assert.deepEqual(readRuncInit(root, 'c1'), { pid: 12, startTime: undefined, ownPidAndMountNamespaces: true });
  });
});

test('no state, a state that is not JSON, or one without a usable pid reads as nothing', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sysrunc-runc-state-'));
  try {
    assert.equal(readRuncInit(root, 'c1'), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  for (const state of ['{"init_process_pid":', { init_process_pid: 0, init_process_start: 1 }, { init_process_pid: '12', init_process_start: 1 }]) {
    withState(state, (root) => assert.equal(readRuncInit(root, 'c1'), undefined, JSON.stringify(state)));
  }
});
