/**
 * The `KEY=VALUE,KEY=VALUE` part of `--iface NAME=KIND:PARAMS`, checked
 * against the keys the kind knows so a typo is named, not ignored.
 */
export function parseParams(kind: string, text: string, known: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (text === '') return out;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`${kind}: '${part}' is not KEY=VALUE (known keys: ${known.join(', ')})`);
    const key = part.slice(0, eq);
    if (!known.includes(key)) throw new Error(`${kind} has no parameter '${key}' (known: ${known.join(', ')})`);
    if (out.has(key)) throw new Error(`${kind}: '${key}' is given twice`);
    out.set(key, part.slice(eq + 1));
  }
  return out;
}
