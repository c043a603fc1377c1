/**
 * A named text with a lazily built line table, so offsets (which every
 * stage stores) can be turned into line/column only when a person reads them.
 */
export interface Position {
  /** 1-based */
  line: number;
  /** 1-based, in UTF-16 code units */
  column: number;
}

export class SourceFile {
  private lineStarts: Int32Array | undefined;

  constructor(
    readonly name: string,
    readonly text: string,
  ) {}

  private starts(): Int32Array {
    if (this.lineStarts) return this.lineStarts;
    const text = this.text;
    // A line ends at LF, CRLF or a lone CR (classic Mac files), as the scanner ends a comment.
    let starts = new Int32Array(1024);
    let count = 1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) {
        if (count === starts.length) {
          const bigger = new Int32Array(starts.length * 2);
          bigger.set(starts);
          starts = bigger;
        }
        starts[count++] = i + 1;
      }
    }
    this.lineStarts = starts.subarray(0, count);
    return this.lineStarts;
  }

  position(offset: number): Position {
    const starts = this.starts();
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  }

  /** The text of a 1-based line, without its line terminator (LF, CRLF or CR). */
  lineText(line: number): string {
    const starts = this.starts();
    const start = starts[line - 1];
    if (start === undefined) return '';
    const next = starts[line];
    let end = next === undefined ? this.text.length : next - 1;
    if (end > start && this.text.charCodeAt(end - 1) === 13) end--;
    return this.text.slice(start, end);
  }

  get lineCount(): number {
    return this.starts().length;
  }
}
