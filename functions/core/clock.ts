/** Milliseconds since the epoch. Injected everywhere so tests control time. */
export type Clock = () => number;

/**
 * The default clock. Reads `Date.now` on every call (not captured once), so
 * `vi.useFakeTimers()` and `vi.setSystemTime()` control it in tests.
 */
export const systemClock: Clock = () => Date.now();
