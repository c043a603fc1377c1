import { Chalk, supportsColor, supportsColorStderr } from 'chalk';
import { plain, type Painter } from '../src/diag/render.js';
import type { Io, Out } from './io.js';

/**
 * Colour only for a terminal, and never when NO_COLOR is set
 * (https://no-color.org) or --no-color is given. FORCE_COLOR, which chalk
 * honours, turns it on for pipes.
 */
export function painterFor(io: Io, out: Out, colorFlag: boolean | undefined): Painter {
  if (colorFlag === false || (io.env.NO_COLOR ?? '') !== '') return plain;
  const forced = (io.env.FORCE_COLOR ?? '') !== '' && io.env.FORCE_COLOR !== '0' && io.env.FORCE_COLOR !== 'false';
  if (!out.isTTY && !forced) return plain;
  const info = out === io.stderr ? supportsColorStderr : supportsColor;
  const level = info ? info.level : forced ? 1 : 0;
  return level === 0 ? plain : new Chalk({ level });
}
