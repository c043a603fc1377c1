import { Session } from 'node:inspector/promises';

/**
 * What share of the CPU a process spent in some of its own code while `run`
 * ran: the self time of the functions whose script URL matches `mine`, in a
 * sampling profile (V8's, every `intervalUs`), over the samples that were
 * not idle. An on/off comparison on shared cores swings by more than the
 * costs worth knowing; this counts them directly. Garbage collection is not
 * attributed to anyone, so the share is of the code's own running time.
 */
export async function profileShare(mine: RegExp, run: () => Promise<void>, intervalUs = 100): Promise<{ share: number; samples: number }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    let profile;
    try {
      await run();
    } finally {
      ({ profile } = await session.post('Profiler.stop'));
    }
    const kind = new Map<number, 'idle' | 'mine' | 'other'>();
    for (const n of profile.nodes) {
      const f = n.callFrame;
      kind.set(n.id, f.functionName === '(idle)' ? 'idle' : mine.test(f.url) ? 'mine' : 'other');
    }
    let busy = 0;
    let ours = 0;
    for (const id of profile.samples ?? []) {
      const k = kind.get(id);
      if (k === 'idle') continue;
      busy++;
      if (k === 'mine') ours++;
    }
    return { share: busy ? ours / busy : 0, samples: busy };
  } finally {
    session.disconnect();
  }
}
