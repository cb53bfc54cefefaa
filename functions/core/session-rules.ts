/**
 * The session rules that code without the session store needs: the config's default TTL and the
 * expiry test the history view applies. Kept free of imports, so a function that reads history
 * (or touches no table) does not bundle the session store and its input schema (zod).
 *
 * session-store.ts still declares its own copies; test/unit/core/session-rules.test.ts asserts
 * they agree until it imports these.
 */

/** A session lasts exactly this long unless `SESSION_TTL_MS` says otherwise (demos, tests). */
export const DEFAULT_SESSION_TTL_MS = 600_000;

/** Active iff `now < expiresAtMs`: at +599 999 ms active, at +600 000 ms expired. */
export const isActiveAt = (expiresAtMs: number, nowMs: number): boolean => nowMs < expiresAtMs;
