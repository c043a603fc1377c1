import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ControlClient, daemonPatience } from '../../src/remote/control-client.js';
import { BrokenReply, daemonFailures } from '../../src/remote/transport.js';
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

const patience = { greetingMs: 50, replyMs: 100, wholeMs: 60_000, error: (greeting: boolean, ms: number) => new Error(`silent ${greeting ? 'before the greeting' : 'after it'} for ${ms} ms`) };

// Replies pair with requests by order: an extra one would otherwise answer the next request, a change said done that was never made.
test('a reply no request was waiting for ends the connection: the next request is refused, not answered with it', async () => {
  await withServer(
    (s) => s.write('OK vnetd 0.1.0 machine m\nOK\n'),
    async (sock) => {
      const c = await ControlClient.connect(sock, patience);
      try {
        await expect(c.request('LINK DELETE h2')).rejects.toThrow(`the control connection sent something that is not vnetd's protocol: a reply no request was waiting for: "OK"`);
      } finally {
        c.close();
      }
    },
  );
});

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

/** The bounds and messages a local daemon named m gets, with test-sized bounds. */
const local = (bounds: { replyMs?: number; wholeMs?: number } = {}) => ({ ...daemonPatience(daemonFailures('m', 'the local daemon of m', 'LOG', 'PID')), ...bounds });

describe('a daemon that trickles a reply', () => {
  /** Greets, then answers every request with a data line it never ends, a byte at a time: never silent for the idle bound, never done. */
  const trickle = (s: net.Socket) => {
    s.write('OK vnetd 0.1.0 protocol 1 machine m\n');
    s.once('data', () => {
      const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write('x')), 10);
      s.write('* ');
      s.on('close', () => clearInterval(t));
    });
  };

  test('is given up on at the bound on one reply in all, naming the machine, the request, the bound and what to do', async () => {
    await withServer(trickle, async (sock) => {
      const c = await ControlClient.connect(sock, local({ replyMs: 5000, wholeMs: 600 }));
      const waiting = [c.request('RULES?'), c.request('INFO?')];
      for (const w of waiting) {
        await expect(w).rejects.toThrow('the local daemon of m kept sending its reply to RULES? but did not finish it within 0.6 s');
        await expect(w).rejects.toMatchObject({ machine: 'm', hint: expect.stringMatching(/^it may be stuck partway .*see its log \(LOG\); if it is wedged, kill it \(its pid is in PID\)/) });
      }
    });
  });

  test('the bound is per reply: replies that each come within it are all read, however long they take together', async () => {
    await withServer(
      (s) => {
        s.write('OK vnetd 0.1.0 protocol 1 machine m\n');
        // One reply every 100 ms: twenty of them take longer than one reply may, in all.
        s.on('data', (d) => {
          let n = String(d).split('\n').length - 1;
          const t = setInterval(() => (s.destroyed || n-- === 0 ? clearInterval(t) : s.write('* a\nOK\n')), 100);
        });
      },
      async (sock) => {
        const c = await ControlClient.connect(sock, local({ wholeMs: 1500 }));
        const replies = await Promise.all(Array.from({ length: 20 }, () => c.request('INFO?')));
        expect(replies.every((r) => r.ok)).toBe(true);
        c.close();
      },
    );
  });
});

describe('a connection that breaks after the greeting', () => {
  /** Greets; on the first request sends `part` of a reply and then `end`s the connection (or resets it). */
  const breaking = (part: string, how: 'end' | 'reset') => (s: net.Socket) => {
    s.write('OK vnetd 0.1.0 protocol 1 machine m\n');
    s.once('data', () => {
      s.write(part, () => (how === 'end' ? s.destroy() : s.resetAndDestroy()));
    });
  };

  test('midway through a reply: said as broken during the reply to that request, not as unreachable', async () => {
    await withServer(breaking('* a\n* b', 'end'), async (sock) => {
      const c = await ControlClient.connect(sock, local());
      const e = await c.request('LINKS?').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(BrokenReply);
      expect((e as BrokenReply).message).toBe('the connection to the daemon of m broke during the reply to LINKS?: the daemon closed it');
      expect((e as BrokenReply).hint).toMatch(/see its log \(LOG\), then run the command again/);
    });
  });

  test('before any of the reply came: said as broken before it', async () => {
    await withServer(breaking('', 'end'), async (sock) => {
      const c = await ControlClient.connect(sock, local());
      await expect(c.batch([{ op: 'link-delete', peer: 'p' }])).rejects.toThrow('the connection to the daemon of m broke before the reply to a batch of 1 change: the daemon closed it');
    });
  });

  test('a socket error midway is said the same way, with the error', async () => {
    // TCP, for a real reset (a Unix socket has none), sent once the client has the start of the reply.
    let far: net.Socket | undefined;
    const server = net.createServer((s) => {
      far = s;
      s.write('OK vnetd 0.1.0 protocol 1 machine m\n');
      s.once('data', () => s.write('* a\n'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const s = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    try {
      const c = new ControlClient(s, local());
      await c.greeting;
      const started = new Promise((r) => s.on('data', (d) => String(d).includes('* a') && r(d)));
      const reply = c.request('RULES?');
      await started;
      far!.resetAndDestroy();
      await expect(reply).rejects.toThrow(/^the connection to the daemon of m broke during the reply to RULES\?: read ECONNRESET$/);
    } finally {
      s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
