import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TypingSignal } from './typing';

describe('TypingSignal', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sends typing once, repeats it only after a while, and stops after a pause', () => {
    const sent: boolean[] = [];
    const t = new TypingSignal((on) => sent.push(on), 3000, 4000);
    t.set(true);
    vi.advanceTimersByTime(1000);
    t.set(true);
    expect(sent).toEqual([true]);
    vi.advanceTimersByTime(2500);
    t.set(true);
    expect(sent).toEqual([true, true]);
    vi.advanceTimersByTime(4000);
    expect(sent).toEqual([true, true, false]);
    t.set(false);
    expect(sent).toEqual([true, true, false]); // no second "stopped"
  });

  it('stops at once when told, and a disposed signal sends nothing later', () => {
    const sent: boolean[] = [];
    const t = new TypingSignal((on) => sent.push(on));
    t.set(true);
    t.set(false);
    expect(sent).toEqual([true, false]);
    t.set(true);
    t.dispose();
    vi.advanceTimersByTime(10_000);
    expect(sent).toEqual([true, false, true]);
  });
});
