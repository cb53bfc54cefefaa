import { createHash } from "node:crypto";
import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { conditionalWrite, mapTransientErrors } from "./dynamo.js";
import { CONVERSATIONS_TABLE } from "./table-schema.js";

/**
 * The conversations awaiting a transcript, kept as a sparse GSI over the conversations' meta
 * items (`awaiting-transcript`, see table-schema.ts). This module is the only one that knows its
 * attributes:
 *
 * - `reconcileShard` / `reconcileDueAtMs` (the index keys): set in the very write that records a
 *   session window (due = window end + RECONCILE_AFTER_MS), removed when a
 *   `post_call_transcription` is stored (webhook or reconciliation), when the call never started
 *   (`call_initiation_failure`), or when ElevenLabs says the conversation is gone or failed.
 * - `reconcileAttempts`: transient failures so far (back-off and giving up are decided from it).
 * - `reconcileOutcome` / `reconcileOutcomeAt`: how it ended, recorded once.
 */

export { DEFAULT_RECONCILE_AFTER_MS } from "./table-schema.js";

/** Shards of the index partition key: a few, so no single partition is hot, and few queries per pass. */
export const RECONCILE_SHARDS = 4;

/** How a conversation left the backlog. */
export type ReconcileOutcome = "transcript_stored" | "initiation_failed" | "not_found" | "failed" | "gave_up";

const { reconcileIndex } = CONVERSATIONS_TABLE;
const NAMES = { "#rShard": reconcileIndex.partitionKey, "#rDue": reconcileIndex.sortKey } as const;

/** The shard of a conversation: a stable hash of its id, so its key never moves between shards. */
export const reconcileShardOf = (conversationId: string): string =>
  String(createHash("sha256").update(conversationId).digest().readUInt32BE(0) % RECONCILE_SHARDS);

/** Every shard, for a pass that reads them all. */
export const reconcileShards = (): string[] =>
  Array.from({ length: RECONCILE_SHARDS }, (_, shard) => String(shard));

/**
 * The update-expression fragment that puts a conversation into the backlog, due `afterMs` after
 * its session window ends. Merged into the write that records the window (`lastSession`), so a
 * window is never recorded without it. Resets the attempt counter: a new window, a new wait.
 */
export const awaitTranscriptFragment = (
  conversationId: string,
  windowEndMs: number,
  afterMs: number,
): { set: string; names: Record<string, string>; values: Record<string, unknown> } => ({
  set: "#rShard = :rShard, #rDue = :rDue, reconcileAttempts = :rZero",
  names: { ...NAMES },
  values: { ":rShard": reconcileShardOf(conversationId), ":rDue": windowEndMs + afterMs, ":rZero": 0 },
});

/**
 * The fragment that takes a conversation out of the backlog with its outcome; merged into the
 * write that stores a transcript or an initiation failure, so the two never disagree.
 */
export const leaveBacklogFragment = (
  outcome: ReconcileOutcome,
  atMs: number,
): { set: string; remove: string; names: Record<string, string>; values: Record<string, unknown> } => ({
  set: "reconcileOutcome = :rOutcome, reconcileOutcomeAt = :rOutcomeAt",
  remove: "#rShard, #rDue",
  names: { ...NAMES },
  values: { ":rOutcome": outcome, ":rOutcomeAt": new Date(atMs).toISOString() },
});

/** One backlog entry as the index holds it. */
export interface DueEntry {
  readonly conversationId: string;
  readonly dueAtMs: number;
}

/** The meta of a conversation just claimed for reconciliation. */
export interface ClaimedConversation {
  readonly conversationId: string;
  readonly attempts: number;
  readonly outcome?: ReconcileOutcome;
  /** The lease: the due time the claim set, which later writes check. */
  readonly leaseUntilMs: number;
}

/** Options of {@link TranscriptBacklog}. */
export interface TranscriptBacklogOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
}

/**
 * Reads and moves entries of the backlog. Every write after the claim is conditional on the lease
 * (`reconcileDueAtMs` still equal to what the claim set), so a pass never undoes what a webhook,
 * a new session window or another pass did meanwhile.
 */
export class TranscriptBacklog {
  readonly tableName: string;
  private readonly client: DynamoDBDocumentClient;

  constructor(options: TranscriptBacklogOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
  }

  /**
   * Entries of one shard due at `nowMs`, oldest first, at most `limit`. A key-condition query on
   * the sparse index: it reads only due entries, never a table scan.
   */
  async listDue(shard: string, nowMs: number, limit: number): Promise<DueEntry[]> {
    const output = await mapTransientErrors(() =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: reconcileIndex.name,
          KeyConditionExpression: "#rShard = :shard AND #rDue <= :now",
          ExpressionAttributeNames: NAMES,
          ExpressionAttributeValues: { ":shard": shard, ":now": nowMs },
          ScanIndexForward: true,
          Limit: limit,
        }),
      ),
    );
    return (output.Items ?? []).map((item) => ({
      conversationId: String(item.conversationId),
      dueAtMs: Number(item[reconcileIndex.sortKey]),
    }));
  }

  /**
   * Claims a due entry by moving its due time to `leaseUntilMs`, only if it is still the entry
   * that was read (same due time, still in the backlog). Returns the meta as it is now, or null
   * when a webhook, a new window or another pass changed it since.
   */
  async claim(entry: DueEntry, leaseUntilMs: number): Promise<ClaimedConversation | null> {
    let item: Record<string, unknown> | undefined;
    const claimed = await conditionalWrite(async () => {
      const output = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { conversationId: entry.conversationId, sk: "meta" },
          UpdateExpression: "SET #rDue = :lease",
          ConditionExpression: "attribute_exists(#rShard) AND #rDue = :seen",
          ExpressionAttributeNames: NAMES,
          ExpressionAttributeValues: { ":lease": leaseUntilMs, ":seen": entry.dueAtMs },
          ReturnValues: "ALL_NEW",
        }),
      );
      item = output.Attributes;
    });
    if (!claimed) return null;
    const outcome = typeof item?.reconcileOutcome === "string" ? item.reconcileOutcome : undefined;
    return {
      conversationId: entry.conversationId,
      attempts: typeof item?.reconcileAttempts === "number" ? item.reconcileAttempts : 0,
      leaseUntilMs,
      ...(outcome ? { outcome: outcome as ReconcileOutcome } : {}),
    };
  }

  /**
   * Moves a claimed entry's due time out. `countAttempt` adds one to the attempt counter (a
   * transient failure); a configuration error retries without using up attempts.
   * @returns false when the lease was lost (the entry changed meanwhile; nothing written)
   */
  async reschedule(
    claimed: ClaimedConversation,
    dueAtMs: number,
    countAttempt: boolean,
    problem: string,
  ): Promise<boolean> {
    return this.conditional({
      TableName: this.tableName,
      Key: { conversationId: claimed.conversationId, sk: "meta" },
      UpdateExpression: countAttempt
        ? "SET #rDue = :due, reconcileProblem = :problem ADD reconcileAttempts :one"
        : "SET #rDue = :due, reconcileProblem = :problem",
      ConditionExpression: "attribute_exists(#rShard) AND #rDue = :lease",
      ExpressionAttributeNames: NAMES,
      ExpressionAttributeValues: {
        ":due": dueAtMs,
        ":problem": problem,
        ":lease": claimed.leaseUntilMs,
        ...(countAttempt ? { ":one": 1 } : {}),
      },
    });
  }

  /**
   * Takes a claimed entry out of the backlog with its outcome (recorded once: the lease condition
   * fails on a second try). `outcome` undefined keeps the one already recorded.
   * @returns false when the lease was lost (nothing written)
   */
  async finish(
    claimed: ClaimedConversation,
    outcome: ReconcileOutcome | undefined,
    atMs: number,
  ): Promise<boolean> {
    const leave = leaveBacklogFragment(outcome ?? "transcript_stored", atMs);
    return this.conditional({
      TableName: this.tableName,
      Key: { conversationId: claimed.conversationId, sk: "meta" },
      UpdateExpression: outcome ? `SET ${leave.set} REMOVE ${leave.remove}` : `REMOVE ${leave.remove}`,
      ConditionExpression: "attribute_exists(#rShard) AND #rDue = :lease",
      ExpressionAttributeNames: leave.names,
      ExpressionAttributeValues: { ...(outcome ? leave.values : {}), ":lease": claimed.leaseUntilMs },
    });
  }

  /** Whether a `post_call_transcription` is stored for the conversation (consistent read of its meta). */
  async transcriptStored(conversationId: string): Promise<boolean> {
    const output = await mapTransientErrors(() =>
      this.client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { conversationId, sk: "meta" },
          ProjectionExpression: "reconcileOutcome",
          ConsistentRead: true,
        }),
      ),
    );
    return output.Item?.reconcileOutcome === "transcript_stored";
  }

  private conditional(input: ConstructorParameters<typeof UpdateCommand>[0]): Promise<boolean> {
    return conditionalWrite(() => this.client.send(new UpdateCommand(input)));
  }
}
