import { describe, expect, it, vi } from "vitest";
import { once } from "../../../functions/core/objects.js";
import { envelopeSchema, interpretPostCallEvent } from "../../../functions/core/post-call-payload.js";
import { sessionInputSchema } from "../../../functions/core/session-input.js";

describe("once: request schemas are built on first use, never at import", () => {
  it("runs the builder on the first call only and hands back the same value after", () => {
    const build = vi.fn(() => ({ built: true }));
    const get = once(build);
    expect(build).not.toHaveBeenCalled();
    const first = get();
    expect(get()).toBe(first);
    expect(build).toHaveBeenCalledTimes(1);
  });

  it("remembers a builder's falsy result too (built once, not on every call)", () => {
    const build = vi.fn(() => undefined);
    const get = once(build);
    get();
    get();
    expect(build).toHaveBeenCalledTimes(1);
  });

  it("tries again after a builder that threw (nothing half-built is remembered)", () => {
    let calls = 0;
    const get = once(() => {
      calls++;
      if (calls === 1) throw new Error("first build failed");
      return calls;
    });
    expect(() => get()).toThrow("first build failed");
    expect(get()).toBe(2);
    expect(get()).toBe(2);
  });

  it("a lazily built schema is one instance, and the code that uses it sees it", () => {
    expect(sessionInputSchema()).toBe(sessionInputSchema());
    expect(envelopeSchema()).toBe(envelopeSchema());
    expect(interpretPostCallEvent('{"type":"post_call_audio","data":{}}', 0)).toMatchObject({
      kind: "ignored",
    });
  });
});
