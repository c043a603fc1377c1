import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ControlClient } from '../../src/remote/control-client.js';
import { MAX_LINE } from '../../src/wire/control.js';

/**
 * Whatever is at the other end of a control stream (a login shell that
 * prints on an exec channel, a stranger's socket), the client says so to
 * every request waiting, and the process carries on.
 */
test('a peer that does not speak the protocol fails the waiting requests with a reason, not the process', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-ctl-'));
  const sock = path.join(dir, 'x.sock');
  const server = net.createServer((s) => s.write('Welcome to the machine!\n'));
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    await expect(ControlClient.connect(sock)).rejects.toThrow(/not vnetd's protocol/);
  } finally {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A socket server for one test, and what to do with each connection. */
async function withServer(onConnection: (s: net.Socket) => void, body: (sock: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-ctl-'));
  const sock = path.join(dir, 'x.sock');
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    await body(sock);
  } finally {
    for (const s of accepted) s.destroy();
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const patience = { greetingMs: 50, replyMs: 100, error: (greeting: boolean, ms: number) => new Error(`silent ${greeting ? 'before the greeting' : 'after it'} for ${ms} ms`) };

describe('a daemon that goes silent', () => {
  test('one that accepts and never greets: connect fails with the given error', async () => {
    await withServer(
      () => {},
      async (sock) => {
        await expect(ControlClient.connect(sock, patience)).rejects.toThrow('silent before the greeting for 50 ms');
      },
    );
  });

  test('one that greets and then never replies: every waiting request fails, and the next is refused', async () => {
    await withServer(
      (s) => s.write('OK vnetd 0.1.0 machine m\n'),
      async (sock) => {
        const c = await ControlClient.connect(sock, patience);
        const waiting = [c.request('INFO?'), c.request('LINKS?')];
        for (const w of waiting) await expect(w).rejects.toThrow('silent after it for 100 ms');
        await expect(c.request('INFO?')).rejects.toThrow('silent after it');
      },
    );
  });

  test('one that answers: no bound applies while nothing is owed', async () => {
    await withServer(
      (s) => {
        s.write('OK vnetd 0.1.0 machine m\n');
        s.on('data', () => s.write('* a\nOK\n'));
      },
      async (sock) => {
        const c = await ControlClient.connect(sock, patience);
        expect((await c.request('INFO?')).data).toEqual(['a']);
        // Idle past both bounds, owing nothing: still usable.
        await new Promise((r) => setTimeout(r, 200));
        expect((await c.request('INFO?')).ok).toBe(true);
        c.close();
      },
    );
  });
});

/** Writes `chunk` for as long as the client reads, as a daemon gone wrong (or a stranger) would. */
const sendForEver = (chunk: string) => (s: net.Socket) => {
  s.write('OK vnetd 0.1.0 protocol 1 machine m\n');
  const more = () => {
    while (!s.destroyed && s.write(chunk));
    if (!s.destroyed) s.once('drain', more);
  };
  more();
};

describe('a daemon that never stops sending', () => {
  const oversized = { ...patience, oversized: (what: string) => new Error(`m sent ${what}`) };

  test('one long line: the waiting request fails at the line bound, with the transport’s error', async () => {
    await withServer(sendForEver('x'.repeat(8192)), async (sock) => {
      const c = await ControlClient.connect(sock, oversized);
      await expect(c.request('INFO?')).rejects.toThrow(`m sent a reply line longer than ${MAX_LINE / 1024} KiB`);
    });
  });

  test('data lines without end: the request fails at the bound on one reply', async () => {
    await withServer(sendForEver('* x\n'.repeat(1024)), async (sock) => {
      const c = await ControlClient.connect(sock, oversized, { line: MAX_LINE, data: 64 * 1024 });
      await expect(c.request('RULES?')).rejects.toThrow('m sent a reply longer than 64 KiB');
      await expect(c.request('INFO?')).rejects.toThrow('m sent a reply longer than 64 KiB');
    });
  });

  test('replies up to the bound are read, and the count starts again with each', async () => {
    const reply = '* 12345678\n'.repeat(100) + 'OK 100\n';
    await withServer(
      (s) => {
        s.write('OK vnetd 0.1.0 protocol 1 machine m\n');
        s.on('data', (d) => s.write(reply.repeat(String(d).split('\n').length - 1)));
      },
      async (sock) => {
        // 100 lines of 10 characters, each counted with what holds it in memory: under 8 KiB, but not twice.
        const c = await ControlClient.connect(sock, oversized, { line: MAX_LINE, data: 8 * 1024 });
        const replies = await Promise.all([c.request('RULES?'), c.request('RULES?'), c.request('RULES?')]);
        expect(replies.map((r) => r.data.length)).toEqual([100, 100, 100]);
        c.close();
      },
    );
  });
});
