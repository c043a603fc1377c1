/**
 * The one way a word reaches a remote shell: single-quoted, so the shell
 * takes every byte literally. A single quote inside the word ends the quote,
 * adds an escaped quote and reopens it. Every remote command is built from
 * these words; nothing is interpolated into a command line any other way.
 */
export function shQuote(word: string): string {
  if (word.includes('\0')) throw new Error('a shell word cannot contain a NUL byte');
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command line from words, each quoted. */
export function shCommand(words: readonly string[]): string {
  return words.map(shQuote).join(' ');
}
