import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextRepair, SURVIVOR_WAIT_MS, type NodeObservation, type Repair } from '../src/local/vm-pair.ts';

const gone: NodeObservation = { running: false, status: undefined };
const silent: NodeObservation = { running: true, status: undefined };
const node = (role: 'primary' | 'backup' | 'stopped' | 'joining', live: boolean, peer: 'none' | 'connected' | 'suspected' | 'lost' | 'joining'): NodeObservation => ({
  running: true,
  status: { role, live, peer: { state: peer, silentTicks: 0, icount: 0, lagInstructions: 0 } },
});

test('nextRepair: what mr local does after a node of the pair died', () => {
  const rows: [string, NodeObservation, NodeObservation, 'a' | 'b', number, Repair][] = [
    // a died; b is the survivor.
    ['survivor took over, no peer', gone, node('primary', true, 'none'), 'a', 0, 'join-survivor'],
    ['survivor still suspecting', gone, node('backup', false, 'suspected'), 'a', 500, 'wait'],
    ['survivor lost its peer, not live yet', gone, node('backup', false, 'lost'), 'a', 900, 'wait'],
    ['survivor live but still shows a peer', gone, node('primary', true, 'connected'), 'a', 100, 'wait'],
    ['survivor not answering yet', gone, silent, 'a', 1000, 'wait'],
    ['survivor stopped serving (lost test-and-set)', gone, node('stopped', false, 'none'), 'a', 0, 'fresh-pair'],
    ['survivor process gone too', gone, gone, 'a', 0, 'fresh-pair'],
    ['survivor never went live in time', gone, node('backup', false, 'lost'), 'a', SURVIVOR_WAIT_MS, 'fresh-pair'],
    ['survivor silent for too long', gone, silent, 'a', SURVIVOR_WAIT_MS + 1, 'fresh-pair'],
    // b died; a is the survivor (the same rules the other way round).
    ['primary went on alone', node('primary', true, 'none'), gone, 'b', 0, 'join-survivor'],
    ['primary still suspecting its backup', node('primary', true, 'suspected'), gone, 'b', 10, 'wait'],
    ['primary stopped', node('stopped', false, 'none'), gone, 'b', 0, 'fresh-pair'],
    // The dead side's observation does not matter: only the survivor can be joined.
    ['dead side reports a live primary (stale)', node('primary', true, 'none'), node('backup', false, 'lost'), 'a', 100, 'wait'],
  ];
  for (const [what, a, b, dead, waited, want] of rows) assert.equal(nextRepair(a, b, dead, waited), want, what);
});
