import { describe, expect, it } from "vitest";
import { toMeta } from "../../../functions/core/conversation-items.js";
import { CONVERSATIONS_TABLE } from "../../../functions/core/table-schema.js";

/** What the listing index holds of a meta item: the table's and the index's keys, plus the INCLUDE list. */
const { listIndex } = CONVERSATIONS_TABLE;
const IN_INDEX = new Set<string>([
  CONVERSATIONS_TABLE.partitionKey,
  CONVERSATIONS_TABLE.sortKey,
  listIndex.partitionKey,
  listIndex.sortKey,
  ...listIndex.projectedAttributes,
]);

/** A meta item with every attribute a meta item can carry set (the listed ones and the rest). */
const fullMeta = (): Record<string, unknown> => ({
  conversationId: "c1",
  sk: "meta",
  listPk: "conversation#03",
  listSk: "2026-12-02T10:00:00.000Z#c1",
  createdAt: "2026-12-02T10:00:00.000Z",
  updatedAt: "2026-12-02T10:05:00.000Z",
  status: "ended",
  agentId: "agent-1",
  lastSession: {
    sessionId: "s2",
    createdAt: "2026-12-02T10:01:00.000Z",
    createdAtMs: 1,
    expiresAtMs: 2,
    ttlMs: 1,
  },
  sessionCount: 2,
  taskCount: 3,
  call: { durationSecs: 42 },
  reconcileOutcome: "gave_up",
  reconcileOutcomeAt: "2026-12-02T11:00:00.000Z",
  sessionStart: { by: "first-tool-call" },
  // Attributes the listing never answers (reconciliation's index keys, transcript bookkeeping).
  reconcileShard: "r1",
  reconcileDueAtMs: 5,
  transcriptStoredAt: "2026-12-02T10:06:00.000Z",
  analysis: { summary: "long text the list does not need" },
});

describe("the listing index's projection", () => {
  it("holds every attribute the listing reads (toMeta), so no listed field goes missing", () => {
    const read = new Set<string>();
    const recorder = new Proxy(fullMeta(), {
      get(target, property, receiver) {
        if (typeof property === "string") read.add(property);
        return Reflect.get(target, property, receiver);
      },
    });
    toMeta(recorder);
    const missing = [...read].filter((attribute) => !IN_INDEX.has(attribute));
    expect(missing, "toMeta reads attributes the by-created index does not project").toEqual([]);
  });

  it("answers the same listed conversation from the index's copy as from the whole item", () => {
    const item = fullMeta();
    const projected = Object.fromEntries(Object.entries(item).filter(([name]) => IN_INDEX.has(name)));
    expect(Object.keys(projected).length).toBeLessThan(Object.keys(item).length);
    expect(toMeta(projected)).toEqual(toMeta(item));
  });

  it("projects no key twice and no key as a non-key attribute (DynamoDB refuses both)", () => {
    const names = listIndex.projectedAttributes;
    expect(new Set(names).size).toBe(names.length);
    for (const key of [
      CONVERSATIONS_TABLE.partitionKey,
      CONVERSATIONS_TABLE.sortKey,
      listIndex.partitionKey,
      listIndex.sortKey,
    ])
      expect(names).not.toContain(key);
  });
});
