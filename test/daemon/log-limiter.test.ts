import { KeyedLogLimiter } from '../../daemon/log-limiter.js';

test('each kind of line has its own allowance, and says what it held back in its own summary', async () => {
  const logged: string[] = [];
  const limiter = new KeyedLogLimiter<string>((l) => logged.push(l), (kind, n) => `${n} more ${kind} held back`, 2, 20);
  for (let i = 0; i < 5; i++) limiter.line('junk', `junk ${i}`);
  limiter.line('wanted', 'the one to see');
  expect(logged).toEqual(['junk 0', 'junk 1', 'the one to see']);
  // Past the window, the next line of a kind first says what that kind held back.
  await new Promise((r) => setTimeout(r, 40));
  limiter.line('wanted', 'again');
  limiter.line('junk', 'junk 5');
  expect(logged.slice(3)).toEqual(['again', '3 more junk held back', 'junk 5']);
});
