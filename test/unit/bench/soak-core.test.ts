import { describe, expect, it } from "vitest";
import { emptySummary, judge, offsetOf, type TrialRecord, tally } from "../../../bench/soak-core.js";

const EXPIRES = "2026-12-02T09:00:00.000Z";
const ok = (outcome: string, duplicate = false) => ({
  status: 200,
  body: { outcome, ...(duplicate ? { duplicate: true } : {}) },
});
const trial = (over: Partial<TrialRecord> = {}): TrialRecord => ({
  kind: "callback",
  offsetMs: -5,
  expiresAt: EXPIRES,
  taskId: "t1",
  callbacks: [ok("delivered")],
  tasks: [{ taskId: "t1", status: "completed", outcome: "delivered", createdAt: "2026-12-02T08:59:59.000Z" }],
  resultLines: 1,
  ...over,
});

describe("soak judging", () => {
  it("covers -5 … +5 ms", () => {
    expect(Array.from({ length: 11 }, (_, i) => offsetOf(i))).toEqual([-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5]);
  });

  it("passes a clean delivered trial", () => {
    expect(judge(trial()).violations).toEqual([]);
  });

  it("flags a 500, a lost result and a duplicated one", () => {
    expect(judge(trial({ callbacks: [{ status: 500 }] })).fiveHundreds).toBe(1);
    const lost = judge(
      trial({ tasks: [{ taskId: "t1", status: "pending", createdAt: EXPIRES }], resultLines: 0 }),
    );
    expect(lost.lost).toBe(true);
    const twice = judge(trial({ kind: "duplicate", callbacks: [ok("delivered"), ok("delivered")] }));
    expect(twice.duplicated).toBe(true);
    expect(judge(trial({ resultLines: 2 })).duplicated).toBe(true);
  });

  it("accepts a duplicate answered with the first outcome, flags one with another", () => {
    expect(
      judge(trial({ kind: "duplicate", callbacks: [ok("delivered"), ok("delivered", true)] })).violations,
    ).toEqual([]);
    expect(
      judge(trial({ kind: "duplicate", callbacks: [ok("delivered"), ok("session_expired", true)] }))
        .violations,
    ).toHaveLength(1);
  });

  it("flags a delivery after the instant and an expiry before it", () => {
    expect(judge(trial({ offsetMs: 3 })).violations).toEqual(["delivered 3 ms after expiry"]);
    const early = trial({
      offsetMs: -4,
      callbacks: [ok("session_expired")],
      tasks: [{ taskId: "t1", status: "completed", outcome: "session_expired", createdAt: EXPIRES }],
    });
    expect(judge(early).violations).toEqual(["expired 4 ms before expiry"]);
  });

  it("accepts an early expiry only when the racing webhook ended the call (reason call_ended)", () => {
    const ended = (kind: TrialRecord["kind"]) =>
      trial({
        kind,
        offsetMs: -4,
        callbacks: [{ status: 200, body: { outcome: "session_expired", reason: "call_ended" } }],
        tasks: [{ taskId: "t1", status: "completed", outcome: "session_expired", createdAt: "x" }],
        ...(kind === "postcall" ? { extra: { status: 200, body: { status: "stored" } } } : {}),
      });
    expect(judge(ended("postcall")).violations).toEqual([]);
    expect(judge(ended("callback")).violations).toEqual(["expired 4 ms before expiry"]);
  });

  it("judges the boundary on the server's receive time when the history has it", () => {
    const at = (offsetMs: number, outcome: string, serverMs: number) =>
      trial({
        offsetMs,
        callbacks: [ok(outcome)],
        tasks: [
          {
            taskId: "t1",
            status: "completed",
            outcome,
            createdAt: EXPIRES,
            resultAt: new Date(Date.parse(EXPIRES) + serverMs).toISOString(),
          },
        ],
      });
    // Sent 5 ms early but received 2 ms late: expired is right, delivered is not.
    expect(judge(at(-5, "session_expired", 2)).violations).toEqual([]);
    expect(judge(at(-5, "delivered", 2)).violations).toEqual(["delivered 2 ms after expiry"]);
    expect(judge(at(-5, "session_expired", -1)).violations).toEqual(["expired 1 ms before expiry"]);
    expect(judge(at(0, "session_expired", 0)).violations).toEqual([]);
  });

  it("flags a boundary task accepted with createdAt == expiresAt", () => {
    const verdict = judge(
      trial({
        kind: "tool",
        extra: { status: 200, body: { status: "accepted", taskId: "t2" } },
        tasks: [
          { taskId: "t1", status: "completed", outcome: "delivered", createdAt: "2026-12-02T08:59:59.000Z" },
          { taskId: "t2", status: "pending", createdAt: EXPIRES, dispatchedAt: EXPIRES },
        ],
      }),
    );
    expect(verdict.violations).toEqual([expect.stringContaining("createdAt")]);
  });

  it("counts a dispatched, unacknowledged pending task as an orphan, not an undispatched one", () => {
    const base = trial().tasks;
    const orphan = { taskId: "x", status: "pending", createdAt: EXPIRES, dispatchedAt: EXPIRES };
    const abandoned = { taskId: "y", status: "pending", createdAt: EXPIRES };
    expect(judge(trial({ tasks: [...base, orphan] })).orphans).toBe(1);
    expect(judge(trial({ tasks: [...base, abandoned] })).orphans).toBe(0);
  });

  it("tallies outcomes by offset and keeps examples of violations", () => {
    const summary = emptySummary();
    tally(summary, trial(), judge(trial()));
    const bad = trial({ callbacks: [{ status: 503 }] });
    tally(summary, bad, judge(bad));
    expect(summary).toMatchObject({ trials: 2, violations: 1, fiveHundreds: 1 });
    expect(summary.outcomes["delivered@-5"]).toBe(1);
    expect(summary.examples).toHaveLength(1);
  });
});
