import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import tty from 'node:tty';

/**
 * Asking a person for a key's passphrase, where OpenSSH's ssh(1) would ask
 * (readpass.c): on the controlling terminal, else through the SSH_ASKPASS
 * program. DISPLAY or WAYLAND_DISPLAY allow the askpass program;
 * SSH_ASKPASS_REQUIRE=force uses it even without them, `prefer` uses it
 * before the terminal when it is allowed, `never` forbids it. The
 * passphrase only ever travels through the terminal or the program's
 * stdout: never an argument, a file or a message.
 */

/** The environment read: SSH_ASKPASS, SSH_ASKPASS_REQUIRE, DISPLAY, WAYLAND_DISPLAY. */
export type PassphraseEnv = Readonly<Record<string, string | undefined>>;

/** Resolves the passphrase, or undefined when none was given (an empty answer, askpass cancelled, Ctrl-C on the terminal). */
export type Ask = (prompt: string) => Promise<string | undefined>;

/** OpenSSH's default askpass program when SSH_ASKPASS is unset. */
const DEFAULT_ASKPASS = '/usr/bin/ssh-askpass';

/** How to ask here, or undefined when there is no way to (no terminal, and no askpass allowed). */
export function passphraseAsker(env: PassphraseEnv, terminal = '/dev/tty'): Ask | undefined {
  const set = (v: string | undefined) => v !== undefined && v !== '';
  let allowAskpass = set(env['DISPLAY']) || set(env['WAYLAND_DISPLAY']);
  let useAskpass = false;
  switch (env['SSH_ASKPASS_REQUIRE']?.toLowerCase()) {
    case 'force':
      useAskpass = allowAskpass = true;
      break;
    case 'prefer':
      useAskpass = allowAskpass;
      break;
    case 'never':
      allowAskpass = false;
      break;
  }
  const program = set(env['SSH_ASKPASS']) ? env['SSH_ASKPASS']! : DEFAULT_ASKPASS;
  if (!useAskpass) {
    if (canOpen(terminal)) return (prompt) => fromTerminal(terminal, prompt);
    useAskpass = true;
  }
  return useAskpass && allowAskpass ? (prompt) => fromAskpass(program, prompt) : undefined;
}

function canOpen(terminal: string): boolean {
  try {
    closeSync(openSync(terminal, 'r+'));
    return true;
  } catch {
    return false;
  }
}

/** Runs the askpass program with the prompt as its argument; its first output line is the answer, a failure exit no answer. */
function fromAskpass(program: string, prompt: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(program, [prompt], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => {
      const text = Buffer.concat(out).toString('utf8');
      const line = text.split(/[\r\n]/)[0]!;
      resolve(code === 0 && line !== '' ? line : undefined);
    });
  });
}

/** Reads a line from the terminal with echo off (raw mode), as readpassphrase(3) does. */
function fromTerminal(terminal: string, prompt: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let fd: number;
    try {
      fd = openSync(terminal, 'r+');
    } catch {
      return resolve(undefined);
    }
    const input = new tty.ReadStream(fd);
    input.setRawMode(true);
    writeSync(fd, prompt);
    let typed = '';
    const finish = (answer: string | undefined) => {
      input.off('data', onData);
      input.setRawMode(false);
      writeSync(fd, '\n');
      input.destroy();
      resolve(answer === '' ? undefined : answer);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(typed);
        if (ch === '\x03' || (ch === '\x04' && typed === '')) return finish(undefined);
        if (ch === '\x7f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else if (ch === '\x15') typed = '';
        else if (ch >= ' ') typed += ch;
      }
    };
    input.on('data', onData);
  });
}
