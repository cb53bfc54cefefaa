/**
 * Key schema of the two tables, shared by the CDK stack, the local server and the
 * integration tests so that all three create exactly the same tables.
 *
 * Data only: no SDK imports here, because `lib/` imports this file at synth time.
 */

/**
 * Default grace period after a session window ends before its transcript is reconciled
 * (`RECONCILE_AFTER_MS`): ElevenLabs' own webhook retries span about 40 minutes.
 */
export const DEFAULT_RECONCILE_AFTER_MS = 2_700_000;

/** Sessions: one item per live conversation, cleaned up by DynamoDB TTL. */
export const SESSIONS_TABLE = {
  partitionKey: "conversationId",
  /** DynamoDB TTL attribute, epoch **seconds**. Cleanup only: expiry is decided on read. */
  ttlAttribute: "expiresAt",
} as const;

/** The longest history retention period (`HISTORY_RETENTION_DAYS`, `historyRetentionDays`): ten years. */
export const MAX_HISTORY_RETENTION_DAYS = 3650;

/**
 * Conversation history: meta, tasks, session windows and messages. No TTL by default: history is
 * kept until erased. Only with a retention period (`historyRetentionDays`) does the table get
 * the TTL attribute `retentionTtlAttribute`, which every item then carries.
 */
export const CONVERSATIONS_TABLE = {
  partitionKey: "conversationId",
  sortKey: "sk",
  /**
   * DynamoDB TTL attribute when a retention period is set, epoch **seconds**. Cleanup only: a
   * conversation past its retention is answered as not found on read (the meta's `purgeAtMs`).
   */
  retentionTtlAttribute: "purgeAt",
  /**
   * Sparse GSI over meta items only, so listing conversations never scans messages. Sorted by
   * `listSk = <createdAt>#<conversationId>`, which never changes, so pagination is stable.
   */
  listIndex: {
    name: "by-created",
    partitionKey: "listPk",
    sortKey: "listSk",
    /**
     * The only attributes the index copies besides the keys (projection INCLUDE): what
     * `GET /conversations` answers per conversation (`toMeta` in conversation-items.ts reads
     * nothing else; a unit test holds the two together). A meta write that changes none of them
     * (a task count aside) costs no index write; the index stores no call details beyond `call`.
     */
    projectedAttributes: [
      "createdAt",
      "updatedAt",
      "status",
      "agentId",
      "lastSession",
      "sessionCount",
      "taskCount",
      "call",
      "reconcileOutcome",
      "reconcileOutcomeAt",
      "sessionStart",
      // The end of a retention period: the listing leaves a conversation past it out.
      "purgeAtMs",
    ],
  },
  /**
   * Sparse GSI of the conversations awaiting a transcript (reconciliation). Only meta items that
   * recorded a session window and have no stored `post_call_transcription` carry its keys:
   * `reconcileShard` (S, a few shards by hash of the id, so no one hot partition) and
   * `reconcileDueAtMs` (N, when to ask ElevenLabs next). Keys only: the pass reads the meta itself.
   */
  reconcileIndex: {
    name: "awaiting-transcript",
    partitionKey: "reconcileShard",
    sortKey: "reconcileDueAtMs",
  },
} as const;
