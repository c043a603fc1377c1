/**
 * A word of someone else's, quoted back in a reply or a message: at most 40
 * characters, and every byte that could end or garble a reply line, or
 * reach a terminal as a control sequence, written as `\xNN`.
 */
export const clipWord = (w: string): string => {
  const short = w.length > 40 ? w.slice(0, 39) + '…' : w;
  return short.replace(/[^\x20-\x7e…]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));
};
