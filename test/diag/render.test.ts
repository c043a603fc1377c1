import { renderDiagnostic } from '../../src/diag/render.js';
import { cells } from '../../src/diag/width.js';
import { diagnosticsOf } from '../support/compile.js';

/** The excerpt and caret lines of a rendered diagnostic, without their gutters. */
function excerpt(text: string, code: string): [string, string] {
  const d = diagnosticsOf(text).find((x) => x.code === code)!;
  const [, line, caret] = renderDiagnostic(d).split('\n');
  return [line!.replace(/^ \d+ \| /, ''), caret!.replace(/^ +\| /, '')];
}

describe('excerpts', () => {
  it('put the caret under the marked text by terminal cells, past wide, astral and tab characters', () => {
    const text = 'BEGIN\n  HOST u AT m 1 e\n  ADD FORWARD m ANY ANY 中文\t😀 m h9\nEND\n';
    const [line, caret] = excerpt(text, 'VN3001');
    expect(line).toBe('  ADD FORWARD m ANY ANY 中文 😀 m h9');
    // 中文 and 😀 take two cells each: h9 starts at cell 34.
    expect(caret).toBe(' '.repeat(34) + '^~');
    const [, wide] = excerpt(text, 'VN1001');
    expect(wide).toBe(' '.repeat(24) + '^~~~');
  });

  it('count cells as a terminal draws them', () => {
    expect(cells('abc\t')).toBe(4);
    expect(cells('中文')).toBe(4);
    expect(cells('😀')).toBe(2);
    expect(cells('e\u0301')).toBe(1);
    expect(cells('é·')).toBe(2);
  });
});
