import { SourceFile } from '../diag/source.js';
import { clipWord } from '../wire/clip-word.js';

/**
 * A file given to a command does not say what the command needs: the
 * message is one line that starts with where (`file:line:col:` or
 * `file: field.path:`) and ends with what was expected, for the CLI to print
 * as it is.
 */
export class InputError extends Error {}

/** JSON.parse, with a syntax error reported as `name:line:col: …` rather than a byte offset. */
export function parseJsonFile(name: string, text: string, expected: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    const at = /position (\d+)/.exec(message);
    const lc = /line (\d+) column (\d+)/.exec(message);
    const where = at ? new SourceFile(name, text).position(Number(at[1])) : lc ? { line: Number(lc[1]), column: Number(lc[2]) } : undefined;
    // Node quotes the offending text, newlines and all; one line is what a message may be.
    const reason = message
      .replace(/, ".*" is not valid JSON$/s, '')
      .replace(/\s*(in JSON )?(at position \d+|\(line \d+ column \d+\)).*$/s, '')
      // The token is the file's own text: a NUL or an escape sequence must not reach a terminal as it is.
      .replace(/^Unexpected token '(.+)'$/s, (_, token: string) => `Unexpected token '${clipWord(token)}'`)
      .replace(/\s+/g, ' ');
    throw new InputError(`${name}${where ? `:${where.line}:${where.column}` : ''}: not JSON (${reason}); expected ${expected}`);
  }
}
