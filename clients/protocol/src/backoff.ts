/**
 * Reconnect delays: exponential, capped, with jitter so that a thousand
 * clients dropped by one server restart do not come back in one burst.
 * Attempt 0 waits about `initialMs`; each failure doubles it up to `maxMs`.
 */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
}

export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = opts.initialMs ?? 500;
  const max = opts.maxMs ?? 30_000;
  const base = Math.min(max, initial * 2 ** Math.min(attempt, 16));
  // "Equal jitter": between half and all of the base delay.
  return Math.round(base / 2 + (random() * base) / 2);
}
