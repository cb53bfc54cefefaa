import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as rules from "../../../functions/core/session-rules.js";
import * as store from "../../../functions/core/session-store.js";

// session-rules.ts holds the expiry rule as pure functions, so the history routes can apply it
// without bundling the store; session-store.ts re-exports the very same bindings.
describe("the expiry rule in session-rules.ts", () => {
  it("is what the session store exports, binding for binding", () => {
    expect(store.DEFAULT_SESSION_TTL_MS).toBe(600_000);
    expect(store.isActiveAt).toBe(rules.isActiveAt);
    expect(store.classify).toBe(rules.classify);
    expect(store.sessionWindow).toBe(rules.sessionWindow);
    expect(store.sessionWindows).toBe(rules.sessionWindows);
  });

  it("keeps a window active at +ttl-1 ms and expired at +ttl ms, and never lets TTL delete early", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 45 }),
        fc.integer({ min: 1, max: 10 * 600_000 }),
        (createdAtMs, ttlMs) => {
          const window = rules.sessionWindow(createdAtMs, ttlMs);
          expect(rules.isActiveAt(window.expiresAtMs, createdAtMs + ttlMs - 1)).toBe(true);
          expect(rules.isActiveAt(window.expiresAtMs, createdAtMs + ttlMs)).toBe(false);
          expect(window.ttlEpochSeconds * 1000).toBeGreaterThanOrEqual(window.expiresAtMs);
        },
      ),
    );
    expect(rules.isActiveAt(600_000, 599_999)).toBe(true);
    expect(rules.isActiveAt(600_000, 600_000)).toBe(false);
  });
});
