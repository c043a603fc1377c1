import type { ControlClient } from '../../src/remote/control-client.js';
import { readDaemon } from '../../src/remote/fetch.js';
import { ReachError } from '../../src/remote/transport.js';
import type { Reply } from '../../src/wire/control.js';

/**
 * What vnetc makes of a daemon's listings when they are not what a vnetd
 * prints (a daemon gone wrong, or something else on its socket): a located
 * error naming the machine, never NaN in a plan or a sum.
 */

const declared = { machine: 'h1', user: 'root', port: 5000, iface: 'vm0' };

function daemon(answers: Partial<Record<'INFO?' | 'DEVICES?' | 'LINKS?' | 'RULES?', string[]>>): ControlClient {
  return {
    request: async (q: keyof typeof answers): Promise<Reply> => ({ ok: true, data: answers[q] ?? [], text: '' }),
  } as unknown as ControlClient;
}

const refusal = (answers: Parameters<typeof daemon>[0]) =>
  readDaemon(daemon(answers), declared).then(
    () => 'read',
    (e: unknown) => (e instanceof ReachError ? e.message : `not a ReachError: ${String(e)}`),
  );

test('a well-formed listing is read', async () => {
  const r = await readDaemon(daemon({ 'INFO?': ['port 5001'], 'DEVICES?': ['vm0 up'], 'LINKS?': ['h2 TCP DIAL 10.0.0.2:5000 ENCRYPT up rtt-ms=0.250 tx=1/60 rx=2/120'] }), declared);
  expect(r.view.host).toEqual({ ...declared, port: 5001 });
  expect(r.links[0]).toMatchObject({ rttMs: 0.25, counters: { 'tx-frames': 1, 'rx-bytes': 120 } });
});

test.each([
  [{ 'INFO?': ['port fifty'] }, "INFO? gives port 'fifty'"],
  [{ 'INFO?': ['port 70000'] }, "INFO? gives port '70000'"],
  [{ 'LINKS?': ['h2 TCP DIAL 10.0.0.2:5000 ENCRYPT up rtt-ms=NaN'] }, 'rtt-ms=NaN is not a round trip in milliseconds'],
  [{ 'LINKS?': ['h2 TCP DIAL 10.0.0.2:5000 ENCRYPT up rtt-ms=- rx=-4/0'] }, 'rx=-4/0 is not a count'],
])('%j is refused: %s', async (answers, reason) => {
  expect(await refusal(answers)).toBe(`the daemon of h1 sent a listing vnetc cannot read: ${reason}`);
});
