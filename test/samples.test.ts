import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileText } from '../src/lang/compile.js';
import { ruleCount } from '../src/model/state.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = path.join(root, 'samples');
const samples = fs.readdirSync(dir).filter((f) => f.endsWith('.vnet'));

describe('samples/', () => {
  it('has the programs the issue asks for', () => {
    expect(samples.sort()).toEqual(
      ['all2all28.vnet', 'all2all8.vnet', 'bus8.vnet', 'ring8.vnet', 'star4.vnet', 'star8.vnet', 'udp-extended.vnet'].sort(),
    );
  });

  it.each(samples)('%s validates with no errors and no warnings', (f) => {
    const r = compileText(`samples/${f}`, fs.readFileSync(path.join(dir, f), 'utf8'));
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([]);
  });

  it('have the sizes of the papers\' topologies', () => {
    const size = (f: string) => {
      const s = compileText(f, fs.readFileSync(path.join(dir, f), 'utf8')).state!;
      return [s.hosts.size, s.links.size, ruleCount(s)];
    };
    expect(size('star4.vnet')).toEqual([5, 4, 22]);
    expect(size('star8.vnet')).toEqual([9, 8, 42]);
    expect(size('ring8.vnet')).toEqual([9, 16, 58]);
    expect(size('all2all8.vnet')).toEqual([9, 36, 98]);
    expect(size('bus8.vnet')).toEqual([9, 15, 210]);
    expect(size('all2all28.vnet')).toEqual([29, 406, 898]);
  });

  it('are exactly what samples/generate.ts writes', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetc-samples-'));
    try {
      execFileSync(process.execPath, [path.join(root, 'dist/samples/generate.js'), out]);
      for (const f of samples) expect(fs.readFileSync(path.join(out, f), 'utf8')).toBe(fs.readFileSync(path.join(dir, f), 'utf8'));
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
