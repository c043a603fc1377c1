import fs from 'node:fs';
import { railroadHtml } from '../grammar/generate.js';

describe('grammar/railroad.html', () => {
  it('is what the parser generates now (run `npm run grammar` after changing the grammar)', () => {
    const committed = fs.readFileSync(new URL('../grammar/railroad.html', import.meta.url), 'utf8');
    expect(committed).toBe(railroadHtml());
  });

  it('draws every rule, and loads its scripts from the local Chevrotain install', () => {
    const html = railroadHtml();
    for (const rule of ['program', 'statement', 'hostDecl', 'blockHead', 'linkStmt', 'forwardStmt', 'srcAddress', 'dstAddress', 'destination']) {
      expect(html).toContain(`"name": "${rule}"`);
    }
    for (const src of html.match(/src='([^']+)'/g) ?? []) {
      const path = src.slice(5, -1);
      expect(fs.existsSync(new URL(path, new URL('../grammar/', import.meta.url)))).toBe(true);
    }
    expect(html).not.toContain('unpkg.com');
  });
});
