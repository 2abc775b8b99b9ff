// Wire-format recordings (test/fixtures/rpc/*.json): what a daemon's server answered and what its
// client sent, recorded from one version and replayed against this one. Values that differ from
// run to run (a pid, the version, a temporary path) stand in the recording as {{name}}.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import path from 'node:path';
import { converse, lineServer, type LineServer } from './line-server.ts';

export interface Recording {
  readonly about: string;
  /** Request lines sent to the server, in order, on one connection. */
  readonly requests: readonly string[];
  /** The server's answer lines, in the order they came (requests run concurrently). */
  readonly answers: readonly string[];
  /** The request lines the client sent for its calls. */
  readonly clientRequests: readonly string[];
}

export function readRecording(name: string): Recording {
  return JSON.parse(readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'rpc', name), 'utf8')) as Recording;
}

/** The recording's line with each {{name}} replaced by this run's value (as it stands in a JSON string). */
export function filledIn(line: string, values: Readonly<Record<string, string>>): string {
  return line.replace(/\{\{(\w+)\}\}/g, (token, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`the recording names {{${name}}}, which this run has no value for`);
    return JSON.stringify(value).slice(1, -1);
  });
}

/**
 * Answer lines by their request's seq, each seq's lines in the order they came: answers to
 * different requests may come in another order, but a stream's events and its result may not.
 */
export function answersBySeq(lines: readonly string[]): Map<number, string[]> {
  const bySeq = new Map<number, string[]>();
  for (const line of lines) {
    // Read off the line's start: a recorded line with a {{name}} in a number is not JSON yet.
    const seq = Number(/^\{"seq":(-?\d+),/.exec(line)?.[1] ?? Number.NaN);
    bySeq.set(seq, [...(bySeq.get(seq) ?? []), line]);
  }
  return new Map([...bySeq].sort(([a], [b]) => a - b));
}

/** The recorded answer lines to request `seq`, re-addressed to the seq a client under test used. */
export function answersFor(recording: Recording, seq: number, clientSeq: number): string[] {
  return (answersBySeq(recording.answers).get(seq) ?? []).map((line) => line.replace(/^\{"seq":-?\d+,/, `{"seq":${clientSeq},`));
}

/**
 * Serves `server` on socket, sends it the recording's requests on one connection, and checks its
 * answers are the recorded ones (with this run's `values` filled in), seq by seq; then closes it.
 */
export async function assertAnswersAsRecorded(server: Server, socket: string, recording: Recording, values: Readonly<Record<string, string>>): Promise<void> {
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    const answers = await converse(socket, recording.requests, recording.answers.length);
    assert.deepEqual(answersBySeq(answers), answersBySeq(recording.answers.map((line) => filledIn(line, values))));
  } finally {
    server.close();
  }
}

/** A stand-in for the recorded daemon: it answers each method with the recorded answers to request recordedSeq[method]. */
export function recordedDaemon(recording: Recording, recordedSeq: Readonly<Record<string, number>>, values: Readonly<Record<string, string>>): Promise<LineServer> {
  return lineServer(({ seq, method }, conn) => {
    for (const line of answersFor(recording, recordedSeq[method] ?? -1, seq)) conn.write(`${filledIn(line, values)}\n`);
  });
}
