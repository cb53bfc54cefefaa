import { randomUUID } from "node:crypto";
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { type Clock, systemClock } from "./clock.js";
import type { LastSession } from "./conversation-items.js";
import type { ConversationStore } from "./conversation-store.js";
import { type FailedCheck, mapTransientErrors, type TransactItem, transactWrite } from "./dynamo.js";
import { assertValidId } from "./ids.js";
import { withoutUndefined } from "./objects.js";
import { type AppLogger, logger as defaultLogger } from "./powertools.js";
import { parseSessionInput, sessionInputSchema } from "./session-input.js";
import { SESSIONS_TABLE } from "./table-schema.js";
import { parseWith } from "./validation.js";

// The expiry rule and the session types live in session-rules.ts (pure, import-free); this store
// applies them to stored items. Re-exported so callers find the whole session story here.
export * from "./session-rules.js";

import {
  classify,
  DEFAULT_SESSION_TTL_MS,
  type InactiveSession,
  isActiveAt,
  type Session,
  type SessionInput,
  type SessionLookup,
  sessionWindow,
} from "./session-rules.js";

/** Options of {@link SessionStore}. */
export interface SessionStoreOptions {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /** @default 600 000 */
  readonly ttlMs?: number;
  /** @default Date.now, read on every call so fake timers work */
  readonly now?: Clock;
  /** Where the last session's window is also recorded, so `lookup` says "expired" after TTL deletion. */
  readonly conversations?: ConversationStore;
  /** @default the service's Powertools Logger */
  readonly logger?: AppLogger;
}

/**
 * Sessions with exact, millisecond expiry on DynamoDB. Reads are consistent and always check
 * `expiresAtMs` against the clock; the TTL attribute `expiresAt` (epoch seconds) only cleans up.
 */
export class SessionStore {
  readonly tableName: string;
  readonly ttlMs: number;
  private readonly client: DynamoDBDocumentClient;
  private readonly now: Clock;
  private readonly conversations: ConversationStore | undefined;
  private readonly logger: AppLogger;

  constructor(options: SessionStoreOptions) {
    const ttlMs = options.ttlMs ?? DEFAULT_SESSION_TTL_MS;
    if (!Number.isInteger(ttlMs) || ttlMs <= 0)
      throw new RangeError(`ttlMs must be a positive integer (got ${ttlMs})`);
    this.client = options.client;
    this.tableName = options.tableName;
    this.ttlMs = ttlMs;
    this.now = options.now ?? systemClock;
    this.conversations = options.conversations;
    this.logger = options.logger ?? defaultLogger;
  }

  /**
   * Registers a session or refreshes it (upsert): a new window of `ttlMs` starts now. With a
   * `conversations` store, the conversation's meta and history record the window in the same
   * transaction, so expiry stays knowable after the session item is gone.
   */
  async set(conversationId: string, input: SessionInput = {}): Promise<Session> {
    assertValidId(conversationId);
    const parsed = parseSessionInput(input, (value) => parseWith(sessionInputSchema, value, "session"));
    const nowMs = this.now();
    const window = sessionWindow(nowMs, this.ttlMs);
    const session: Session = withoutUndefined({
      conversationId,
      sessionId: randomUUID(),
      createdAt: new Date(nowMs).toISOString(),
      createdAtMs: nowMs,
      expiresAt: new Date(window.expiresAtMs).toISOString(),
      expiresAtMs: window.expiresAtMs,
      ttlMs: this.ttlMs,
      agentId: parsed.agentId,
      notifyUrl: parsed.notifyUrl,
      metadata: parsed.metadata,
    });
    const put: PutCommandInput = { TableName: this.tableName, Item: toItem(session, window.ttlEpochSeconds) };
    const previous = this.conversations
      ? await this.putWithHistory(
          put,
          this.conversations.sessionRegistrationWrites(conversationId, toLastSession(session)),
        )
      : await this.putReturningOld(put);

    const previousState = previous ? classify(previous, nowMs) : undefined;
    this.logger.info(previous ? "Session refreshed: a new window started" : "Session registered", {
      conversationId,
      sessionId: session.sessionId,
      expiresAt: session.expiresAt,
      ttlMs: this.ttlMs,
      ...(previousState
        ? { previousSessionId: previous?.sessionId, previousStatus: previousState.status }
        : {}),
    });
    return session;
  }

  /** The active session, or null when it expired (even if the item still exists) or was never set. */
  async get(conversationId: string): Promise<Session | null> {
    const result = await this.lookupItem(conversationId);
    return result.status === "active" ? result.session : null;
  }

  /**
   * Active, expired (with when and for how long) or missing. When DynamoDB has already removed
   * the expired item, the conversation's meta still knows the last window, so a callback hours
   * late learns "expired", not "missing". "missing" means no session was ever registered.
   */
  async lookup(conversationId: string): Promise<SessionLookup> {
    const fromItem = await this.lookupItem(conversationId);
    if (fromItem.status !== "missing" || !this.conversations) return fromItem;
    const meta = await this.conversations.getMeta(conversationId);
    const last = meta?.lastSession;
    if (!last) return fromItem;
    const nowMs = this.now();
    // The item is gone, so the window is over even if its nominal expiry is later (it was deleted).
    const result = classify(
      fromLastSession(conversationId, last),
      nowMs,
      Math.min(last.endedAtMs ?? nowMs, nowMs),
    );
    return this.noteExpiry(
      conversationId,
      result,
      "Session found expired on read (item already removed, known from history)",
    );
  }

  /** Ends a session now. History is untouched except that its meta notes the early end. */
  async delete(conversationId: string): Promise<void> {
    assertValidId(conversationId);
    const output = await mapTransientErrors(() =>
      this.client.send(
        new DeleteCommand({ TableName: this.tableName, Key: { conversationId }, ReturnValues: "ALL_OLD" }),
      ),
    );
    const old = output.Attributes ? fromItem(output.Attributes) : undefined;
    if (!old) return;
    const nowMs = this.now();
    if (this.conversations && isActiveAt(old.expiresAtMs, nowMs)) {
      await mapTransientErrors(
        () => this.conversations?.markSessionEnded(conversationId, old.sessionId, nowMs) ?? Promise.resolve(),
      );
    }
    this.logger.info("Session deleted", { conversationId, sessionId: old.sessionId });
  }

  /**
   * A transaction item that holds only while the session is active at `nowMs`
   * (`expiresAtMs > :now`), returning the old item when it fails. Writes that depend on a live
   * session include it, so a write racing the expiry instant has exactly one outcome.
   */
  activeCondition(conversationId: string, nowMs: number): TransactItem {
    return {
      ConditionCheck: {
        TableName: this.tableName,
        Key: { conversationId },
        ConditionExpression: "expiresAtMs > :now",
        ExpressionAttributeValues: { ":now": nowMs },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    };
  }

  /**
   * Why the session is not live at `atMs`, for a write whose {@link activeCondition} failed
   * (pass the failed check it returned) or that found no live session: `expired` with when the
   * window ended and how long before `atMs`, or `missing` when no window is known (never
   * registered, or re-registered since). The failed check holds the session as it was when the
   * condition failed; without one, the item or the conversation's meta is read. An end read
   * after `atMs` (a session deleted while the request was in flight) is clamped to `atMs`: a
   * session never appears to end after the request that found it over.
   */
  async explainInactive(
    conversationId: string,
    atMs: number,
    failedCheck?: FailedCheck,
  ): Promise<InactiveSession> {
    if (failedCheck) {
      const state = classify(fromItem(failedCheck as unknown as Record<string, unknown>), atMs);
      if (state.status === "expired")
        return { status: "expired", expiredAt: state.expiredAt, expiredForMs: state.expiredForMs };
    }
    const lookup = await this.lookup(conversationId);
    if (lookup.status !== "expired") return { status: "missing" };
    const endedAtMs = Math.min(Date.parse(lookup.expiredAt), atMs);
    return {
      status: "expired",
      expiredAt: new Date(endedAtMs).toISOString(),
      expiredForMs: atMs - endedAtMs,
    };
  }

  private async lookupItem(conversationId: string): Promise<SessionLookup> {
    assertValidId(conversationId);
    const output = await mapTransientErrors(() =>
      this.client.send(
        new GetCommand({ TableName: this.tableName, Key: { conversationId }, ConsistentRead: true }),
      ),
    );
    if (!output.Item) return { status: "missing" };
    const result = classify(fromItem(output.Item), this.now());
    return this.noteExpiry(
      conversationId,
      result,
      "Session found expired on read (item not yet removed by TTL)",
    );
  }

  /** Logs an expiry found on read (INFO, with when and how long ago) and passes the result on. */
  private noteExpiry(conversationId: string, result: SessionLookup, message: string): SessionLookup {
    if (result.status === "expired") {
      this.logger.info(message, {
        conversationId,
        expiredAt: result.expiredAt,
        expiredForMs: result.expiredForMs,
      });
    }
    return result;
  }

  private async putReturningOld(put: PutCommandInput): Promise<Session | undefined> {
    const output = await mapTransientErrors(() =>
      this.client.send(new PutCommand({ ...put, ReturnValues: "ALL_OLD" })),
    );
    return output.Attributes ? fromItem(output.Attributes) : undefined;
  }

  /**
   * Writes the session and its history records atomically. The first attempt requires that no
   * session item exists, which tells a registration from a refresh (the failed condition
   * returns the old item); a refresh then overwrites unconditionally.
   */
  private async putWithHistory(put: PutCommandInput, history: TransactItem[]): Promise<Session | undefined> {
    const first = await transactWrite(this.client, [
      {
        Put: {
          ...put,
          ConditionExpression: "attribute_not_exists(conversationId)",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      } as TransactItem,
      ...history,
    ]);
    if (first.committed) return undefined;
    const oldItem = first.reasons[0]?.item;
    const second = await transactWrite(this.client, [{ Put: put } as TransactItem, ...history]);
    if (!second.committed) throw new Error("Unconditional session refresh was cancelled");
    return oldItem ? fromItem(oldItem) : undefined;
  }
}

/** Maps a raw (already unmarshalled) session item to the domain type. */
const fromItem = (item: Record<string, unknown>): Session =>
  withoutUndefined({
    conversationId: String(item[SESSIONS_TABLE.partitionKey]),
    sessionId: String(item.sessionId),
    createdAt: String(item.createdAt),
    createdAtMs: Number(item.createdAtMs ?? Date.parse(String(item.createdAt))),
    expiresAt: new Date(Number(item.expiresAtMs)).toISOString(),
    expiresAtMs: Number(item.expiresAtMs),
    ttlMs: Number(item.ttlMs),
    agentId: typeof item.agentId === "string" ? item.agentId : undefined,
    notifyUrl: typeof item.notifyUrl === "string" ? item.notifyUrl : undefined,
    metadata: item.metadata as Session["metadata"],
  });

const toItem = (session: Session, ttlEpochSeconds: number): Record<string, unknown> =>
  withoutUndefined({
    [SESSIONS_TABLE.partitionKey]: session.conversationId,
    sessionId: session.sessionId,
    createdAt: session.createdAt,
    createdAtMs: session.createdAtMs,
    expiresAtMs: session.expiresAtMs,
    [SESSIONS_TABLE.ttlAttribute]: ttlEpochSeconds,
    ttlMs: session.ttlMs,
    agentId: session.agentId,
    notifyUrl: session.notifyUrl,
    metadata: session.metadata,
  });

const toLastSession = (s: Session): LastSession =>
  withoutUndefined({
    sessionId: s.sessionId,
    createdAt: s.createdAt,
    createdAtMs: s.createdAtMs,
    expiresAtMs: s.expiresAtMs,
    ttlMs: s.ttlMs,
    agentId: s.agentId,
    notifyUrl: s.notifyUrl,
  });

const fromLastSession = (conversationId: string, last: LastSession): Session =>
  withoutUndefined({
    conversationId,
    sessionId: last.sessionId,
    createdAt: last.createdAt,
    createdAtMs: last.createdAtMs,
    expiresAt: new Date(last.expiresAtMs).toISOString(),
    expiresAtMs: last.expiresAtMs,
    ttlMs: last.ttlMs,
    agentId: last.agentId,
    notifyUrl: last.notifyUrl,
  });
