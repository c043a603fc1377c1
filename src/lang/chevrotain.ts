import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Chevrotain, loaded from the single-file bundle it ships (lib/chevrotain.mjs)
 * rather than its package entry: the entry pulls in hundreds of lodash-es
 * modules and takes ~230 ms to import, the bundle ~15 ms, and every vnetc
 * command that reads a .vnet file pays it. The package's `exports` map only
 * names the entry, so the bundle is found next to it.
 *
 * Everything in vnetc that uses Chevrotain at run time imports it from here,
 * so there is exactly one copy (token types are compared by identity).
 * Type-only imports may still name 'chevrotain'.
 */
type Chevrotain = typeof import('chevrotain');

const entry = createRequire(import.meta.url).resolve('chevrotain');
const bundle = join(dirname(entry), '..', 'chevrotain.mjs');
const chevrotain = (await import(pathToFileURL(bundle).href)) as Chevrotain;

export const { createToken, EmbeddedActionsParser, EOF, Lexer, tokenMatcher, createSyntaxDiagramsCode, VERSION } =
  chevrotain;
