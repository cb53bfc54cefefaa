import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  LEGACY_LIST_PK,
  LIST_SHARDS,
  listPartitionKey,
  listPartitionKeys,
  metaTouch,
} from "../../../functions/core/conversation-items.js";

// Write-distribution simulation: 1 000 new conversations per second for a minute, each meta
// write landing on the listing index key of its conversation. No key may take more than its share.
describe("listing index write distribution", () => {
  const PER_SECOND = 1000;
  const SECONDS = 60;
  const perKey = new Map<string, number>();
  let worstSecond = 0;
  for (let second = 0; second < SECONDS; second++) {
    const thisSecond = new Map<string, number>();
    for (let i = 0; i < PER_SECOND; i++) {
      const conversationId = randomUUID();
      const pk = metaTouch(conversationId, new Date(0).toISOString()).ExpressionAttributeValues[
        ":listPk"
      ] as string;
      perKey.set(pk, (perKey.get(pk) ?? 0) + 1);
      thisSecond.set(pk, (thisSecond.get(pk) ?? 0) + 1);
    }
    worstSecond = Math.max(worstSecond, ...thisSecond.values());
  }

  it("uses every shard key and never the legacy key", () => {
    expect([...perKey.keys()].sort()).toEqual(listPartitionKeys().filter((k) => k !== LEGACY_LIST_PK));
  });

  it("gives no key more than its share over the minute (within 10 %)", () => {
    const share = (PER_SECOND * SECONDS) / LIST_SHARDS;
    expect(Math.max(...perKey.values())).toBeLessThanOrEqual(share * 1.1);
    expect(Math.min(...perKey.values())).toBeGreaterThanOrEqual(share * 0.9);
  });

  it("keeps every key's busiest second far below a partition's 1 000 writes/s", () => {
    // 62.5 writes/s is the even share; the old constant key took all 1 000.
    expect(worstSecond).toBeLessThanOrEqual((2 * PER_SECOND) / LIST_SHARDS);
  });

  it("is stable: a conversation always lands on the same key", () => {
    const conversationId = randomUUID();
    expect(listPartitionKey(conversationId)).toBe(listPartitionKey(conversationId));
  });
});
