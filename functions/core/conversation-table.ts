import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { type Clock, systemClock } from "./clock.js";
import {
  iso,
  type MessageInput,
  messageItem,
  metaTouch,
  retentionFields,
  withRetentionAnchor,
} from "./conversation-items.js";

/** What both stores of the conversations table are built from. */
export interface ConversationTableOptions {
  readonly client: DynamoDBDocumentClient;
  /** The conversations table. */
  readonly tableName: string;
  /** @default Date.now */
  readonly now?: Clock;
  /**
   * Days a conversation is kept after its first write (`HISTORY_RETENTION_DAYS`): every item
   * written then carries the `purgeAt` TTL attribute. @default undefined: kept until erased
   */
  readonly historyRetentionDays?: number;
}

const DAY_MS = 86_400_000;

/**
 * The part `ConversationStore` and `TaskStore` share: the client, the table, the clock, and how
 * an item they write is stamped for the retention period. Every write into the conversations
 * table goes through {@link touchMeta}, {@link lineItem} or {@link retention}, so no item that
 * holds personal data is written without its `purgeAt` when retention is on.
 */
export abstract class ConversationTable {
  readonly tableName: string;
  protected readonly client: DynamoDBDocumentClient;
  protected readonly now: Clock;
  /** The retention period in ms, or undefined: kept forever. */
  protected readonly retentionMs: number | undefined;

  constructor(options: ConversationTableOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.now = options.now ?? systemClock;
    this.retentionMs =
      options.historyRetentionDays === undefined ? undefined : options.historyRetentionDays * DAY_MS;
  }

  /** The `purgeAt` of an item written at `writtenAtMs` (nothing when retention is off). */
  protected retention(writtenAtMs: number): { purgeAt?: number } {
    return retentionFields(writtenAtMs, this.retentionMs);
  }

  /** {@link metaTouch}, plus the retention anchor of a conversation's first write. */
  protected touchMeta(conversationId: string, atMs: number, agentId?: string, status?: string) {
    return withRetentionAnchor(metaTouch(conversationId, iso(atMs), agentId, status), atMs, this.retentionMs);
  }

  /** A history line's item, written at `writtenAtMs`. */
  protected lineItem(conversationId: string, message: MessageInput, writtenAtMs: number) {
    return { ...messageItem(conversationId, message), ...this.retention(writtenAtMs) };
  }
}
