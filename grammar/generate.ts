import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createSyntaxDiagramsCode } from '../src/lang/chevrotain.js';
import { parserInstance } from '../src/lang/parser.js';

/**
 * Railroad diagrams of the grammar, drawn from the parser itself so they can
 * never disagree with it. The page loads Chevrotain's diagram scripts from
 * node_modules (there after `npm ci`) rather than from a CDN, so it works
 * offline; `npm run grammar` rewrites grammar/railroad.html, and a test
 * fails if the committed page is stale.
 */
export function railroadHtml(): string {
  const base = '../node_modules/chevrotain/diagrams/';
  return createSyntaxDiagramsCode(parserInstance().getSerializedGastProductions(), {
    resourceBase: base,
    css: `${base}diagrams.css`,
  });
}

// `npm run grammar` runs this at the repository root.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? 'grammar/railroad.html';
  writeFileSync(out, railroadHtml());
  console.log(`wrote ${out}`);
}
