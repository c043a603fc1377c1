import { ending, type ExecResult } from '../../src/remote/ssh/exec.js';

test('how a remote command ended, in words: its status, the signal that killed it, or that the channel closed without either', () => {
  const r = (code: number | null, signal?: string): ExecResult => ({ code, signal, stdout: '', stderr: '' });
  expect(ending(r(0))).toBe('exit 0');
  expect(ending(r(127))).toBe('exit 127');
  expect(ending(r(null, 'SIGKILL'))).toBe('killed by SIGKILL');
  expect(ending(r(null))).toBe('no exit status');
});
