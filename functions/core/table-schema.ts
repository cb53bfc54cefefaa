/**
 * Key schema of the two tables, shared by the CDK stack, the local server and the
 * integration tests so that all three create exactly the same tables.
 *
 * Data only: no SDK imports here, because `lib/` imports this file at synth time.
 */

/** Sessions: one item per live conversation, cleaned up by DynamoDB TTL. */
export const SESSIONS_TABLE = {
  partitionKey: "conversationId",
  /** DynamoDB TTL attribute, epoch **seconds**. Cleanup only: expiry is decided on read. */
  ttlAttribute: "expiresAt",
} as const;

/** Conversation history: meta, tasks and messages. Never has a TTL. */
export const CONVERSATIONS_TABLE = {
  partitionKey: "conversationId",
  sortKey: "sk",
  /**
   * Sparse GSI over meta items only, so listing conversations never scans messages. Sorted by
   * `listSk = <createdAt>#<conversationId>`, which never changes, so pagination is stable.
   */
  listIndex: {
    name: "by-created",
    partitionKey: "listPk",
    sortKey: "listSk",
  },
} as const;
