#!/usr/bin/env node
import { main } from './main.js';
import type { Io } from './io.js';

const io: Io = {
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin: async (max) => {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of process.stdin) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total > max) break; // enough to say it is too much; an endless pipe is not read for ever
    }
    return Buffer.concat(chunks);
  },
  cwd: process.cwd(),
  env: process.env,
  ...(process.stdin.isTTY
    ? {
        ask: async (question: string) => {
          const rl = (await import('node:readline/promises')).createInterface({ input: process.stdin, output: process.stderr });
          // Ctrl-C and Ctrl-D at a prompt mean no; readline would reject the question with an AbortError.
          const answered = new AbortController();
          rl.on('SIGINT', () => answered.abort());
          rl.on('close', () => answered.abort());
          try {
            return await rl.question(question, { signal: answered.signal });
          } catch (e) {
            if ((e as Error).name !== 'AbortError') throw e;
            process.stderr.write('\n');
            return undefined;
          } finally {
            rl.close();
          }
        },
      }
    : {}),
};

// An EPIPE (output piped into `head`) is the reader leaving, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // Every expected failure is a diagnostic; reaching here is a vnetc bug.
    process.stderr.write(`vnetc: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n` +
      'This is a bug in vnetc; please report it with the command and input that caused it.\n');
    process.exitCode = 70;
  },
);
