import { Chalk, supportsColor, supportsColorStderr } from 'chalk';
import { plain, type Painter } from '../src/diag/render.js';
import type { Io, Out } from './io.js';

/**
 * Colour only for a terminal, and never when NO_COLOR is set
 * (https://no-color.org) or --no-color is given. FORCE_COLOR, which chalk
 * honours, and --color turn it on for pipes; the flag, being asked for on
 * this command, wins over NO_COLOR, as no-color.org has it.
 */
export function painterFor(io: Io, out: Out, colorFlag: boolean | undefined): Painter {
  if (colorFlag === false || (colorFlag === undefined && (io.env.NO_COLOR ?? '') !== '')) return plain;
  const forced = colorFlag === true || ((io.env.FORCE_COLOR ?? '') !== '' && io.env.FORCE_COLOR !== '0' && io.env.FORCE_COLOR !== 'false');
  if (!out.isTTY && !forced) return plain;
  const info = out === io.stderr ? supportsColorStderr : supportsColor;
  const level = info ? info.level : forced ? 1 : 0;
  return level === 0 ? plain : new Chalk({ level });
}
