import { Duplex, Readable } from 'node:stream';
import type ssh2 from 'ssh2';
import { ending, run, type ExecResult } from '../../src/remote/ssh/exec.js';

test('how a remote command ended, in words: its status, the signal that killed it, or that the channel closed without either', () => {
  const r = (code: number | null, signal?: string): ExecResult => ({ code, signal, stdout: '', stderr: '' });
  expect(ending(r(0))).toBe('exit 0');
  expect(ending(r(127))).toBe('exit 127');
  expect(ending(r(null, 'SIGKILL'))).toBe('killed by SIGKILL');
  expect(ending(r(null))).toBe('no exit status');
});

class Channel extends Duplex {
  stderr = new Readable({ read() {} });
  override _read(): void {}
  override _write(_chunk: unknown, _enc: string, done: () => void): void {
    done();
  }
}

/**
 * A quick command whose whole answer (exec success, output, exit status,
 * EOF) sshd sent in one segment: ssh2 handles it in one go, so the exit
 * status is emitted before anyone awaiting the channel has run. Seen for
 * real when a login shell failed at once.
 */
const quick = (code: number): ssh2.Client =>
  ({
    exec(_command: string, opened: (err: Error | undefined, ch: Channel) => void) {
      const ch = new Channel();
      opened(undefined, ch);
      ch.push('home=/root\n');
      ch.stderr.push("/usr/bin/env: 'bash': No such file or directory\n");
      ch.emit('exit', code);
      ch.push(null);
      ch.stderr.push(null);
      setImmediate(() => ch.emit('close'));
    },
  }) as unknown as ssh2.Client;

test('a command that ends in the same read as its exec succeeded keeps its exit status and output', async () => {
  expect(await run(quick(3), 'x')).toEqual({ code: 3, signal: undefined, stdout: 'home=/root\n', stderr: "/usr/bin/env: 'bash': No such file or directory\n" });
});

test("a remote command's first line is what a message quotes, cut short when it runs on", async () => {
  const { firstLine } = await import('../../src/remote/ssh/install.js');
  expect(firstLine('\n  sh: 1: nope: not found\nmore\n')).toBe('sh: 1: nope: not found');
  const long = firstLine('x'.repeat(1 << 20));
  expect(long).toHaveLength(300);
  expect(long.endsWith('…')).toBe(true);
});
