import { describe, expect, it } from "vitest";
import type { LastSession, Message } from "../../../functions/core/conversation-items.js";
import { sessionWindows } from "../../../functions/core/session-store.js";

const T0 = Date.parse("2026-11-27T10:00:00.000Z");
const TEN_MIN = 600_000;
const iso = (ms: number) => new Date(ms).toISOString();

const registered = (sessionId: string, atMs: number): Message => ({
  kind: "session_registered",
  atMs,
  at: iso(atMs),
  seq: 0,
  id: sessionId,
  data: { sessionId, expiresAt: iso(atMs + TEN_MIN), ttlMs: TEN_MIN },
});

const last = (sessionId: string, createdAtMs: number, endedAtMs?: number): LastSession => ({
  sessionId,
  createdAt: iso(createdAtMs),
  createdAtMs,
  expiresAtMs: createdAtMs + TEN_MIN,
  ttlMs: TEN_MIN,
  ...(endedAtMs !== undefined ? { endedAtMs } : {}),
});

describe("sessionWindows", () => {
  it("reports a window active at +599 999 ms and expired at +600 000 ms (the session store's rule)", () => {
    const history = [registered("s1", T0)];
    expect(sessionWindows(history, last("s1", T0), T0 + TEN_MIN - 1)).toEqual([
      { sessionId: "s1", createdAt: iso(T0), expiresAt: iso(T0 + TEN_MIN), status: "active" },
    ]);
    expect(sessionWindows(history, last("s1", T0), T0 + TEN_MIN)).toEqual([
      {
        sessionId: "s1",
        createdAt: iso(T0),
        expiresAt: iso(T0 + TEN_MIN),
        status: "expired",
        endedAt: iso(T0 + TEN_MIN),
        reason: "timed_out",
      },
    ]);
  });

  it("ends a window when a re-registration starts a new one, oldest first whatever the input order", () => {
    const windows = sessionWindows(
      [registered("s2", T0 + 60_000), registered("s1", T0)],
      last("s2", T0 + 60_000),
      T0 + 3 * 3_600_000,
    );
    expect(windows.map((w) => [w.sessionId, w.status, w.endedAt])).toEqual([
      ["s1", "replaced", iso(T0 + 60_000)],
      ["s2", "expired", iso(T0 + 60_000 + TEN_MIN)],
    ]);
  });

  it("reports a session deleted before its expiry as deleted, at the time it ended", () => {
    const windows = sessionWindows([registered("s1", T0)], last("s1", T0, T0 + 90_000), T0 + 120_000);
    expect(windows).toEqual([expect.objectContaining({ status: "deleted", endedAt: iso(T0 + 90_000) })]);
  });

  it("still knows the last window from the meta when no registration line is on record", () => {
    expect(sessionWindows([], last("s9", T0), T0 + 5_000)).toEqual([
      expect.objectContaining({ sessionId: "s9", status: "active" }),
    ]);
  });

  it("has no windows for a conversation that never had a session", () => {
    expect(sessionWindows([], undefined, T0)).toEqual([]);
  });
});
