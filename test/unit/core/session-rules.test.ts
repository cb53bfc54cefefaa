import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as rules from "../../../functions/core/session-rules.js";
import * as store from "../../../functions/core/session-store.js";

// session-rules.ts holds the two session rules that functions without the session store need;
// session-store.ts still declares its own copies. They must never differ.
describe("session rules shared with functions that do not bundle the session store", () => {
  it("has the session store's default TTL", () => {
    expect(rules.DEFAULT_SESSION_TTL_MS).toBe(store.DEFAULT_SESSION_TTL_MS);
    expect(rules.DEFAULT_SESSION_TTL_MS).toBe(600_000);
  });

  it("applies the session store's expiry rule at every instant, the boundary included", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 45 }),
        fc.integer({ min: -2000, max: 2000 }),
        (end, delta) => {
          expect(rules.isActiveAt(end, end + delta)).toBe(store.isActiveAt(end, end + delta));
        },
      ),
    );
    expect(rules.isActiveAt(600_000, 599_999)).toBe(true);
    expect(rules.isActiveAt(600_000, 600_000)).toBe(false);
  });
});
