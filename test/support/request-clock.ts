import { AsyncLocalStorage } from "node:async_hooks";
import type { Clock } from "../../functions/core/clock.js";

const current = new AsyncLocalStorage<Clock>();

/**
 * A clock per request. Concurrent requests each see their own time (a global fake `Date` would
 * give them all the same instant), so a race can put one callback 1 ms before the expiry instant
 * and its duplicate 1 ms after it. Outside {@link runAt} it is the real `Date.now`.
 */
export const requestClock: Clock = () => (current.getStore() ?? Date.now)();

/**
 * Runs `operation` with {@link requestClock} starting at `startMs`. With `tickMs > 0` every read
 * advances the clock, so the instant can pass between two reads of the same request (between the
 * session read and the conditional write, for example).
 */
export const runAt = <T>(startMs: number, operation: () => Promise<T>, tickMs = 0): Promise<T> => {
  let next = startMs;
  return current.run(() => {
    const value = next;
    next += tickMs;
    return value;
  }, operation);
};
