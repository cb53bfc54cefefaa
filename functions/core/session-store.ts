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
import {
  classifyItem,
  erasedMarkerItem,
  fromItem,
  fromLastSession,
  toItem,
  toLastSession,
} from "./session-items.js";
import { parseWith } from "./validation.js";

export { ERASED_SESSION_ID } from "./session-items.js";
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

/** Call facts a tool call carries (ElevenLabs `system__` dynamic variables), kept when it starts a session. */
export interface CallContext {
  readonly agentId?: string;
  readonly callSid?: string;
  readonly callerId?: string;
  readonly calledNumber?: string;
}

/** A session started by the first tool call, and the writes that start it (for the task's transaction). */
export interface SessionStart {
  readonly session: Session;
  /** The session item, conditional on no session item existing. */
  readonly sessionPut: TransactItem;
  /** The history records of the registration (its line, its window record). */
  readonly historyLines: readonly TransactItem[];
  /** Meta fields of the window (`lastSession`...), for the one meta update of the transaction. */
  readonly meta: LastSession;
}

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
    const parsed = parseSessionInput(input, (value) => parseWith(sessionInputSchema(), value, "session"));
    const nowMs = this.now();
    const { session, window } = this.newWindow(conversationId, nowMs, {
      agentId: parsed.agentId,
      notifyUrl: parsed.notifyUrl,
      metadata: parsed.metadata,
    });
    const put: PutCommandInput = { TableName: this.tableName, Item: toItem(session, window.ttlEpochSeconds) };
    if (this.conversations) {
      // One unconditional transaction for a registration and a refresh alike (the same stored
      // result either way). Telling them apart would cost a second request (a transaction cannot
      // return the old item), so the log line does not: the history keeps every window.
      await this.putWithHistory(
        put,
        this.conversations.sessionRegistrationWrites(conversationId, toLastSession(session)),
      );
      this.logger.info("Session registered: a new window started", {
        conversationId,
        sessionId: session.sessionId,
        expiresAt: session.expiresAt,
        ttlMs: this.ttlMs,
      });
      return session;
    }
    const previous = await this.putReturningOld(put);
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
    if (last.endedAtMs === undefined && isActiveAt(last.expiresAtMs, nowMs)) {
      // The meta names a live window whose item was not there a moment ago: a registration (or a
      // first tool call) committed between the two reads. The item decides, read again.
      const again = await this.lookupItem(conversationId);
      if (again.status !== "missing") return again;
    }
    // The item is gone, so the window is over even if its nominal expiry is later (it was deleted).
    const result = classify(
      fromLastSession(conversationId, last),
      nowMs,
      Math.min(last.endedAtMs ?? nowMs, nowMs),
      last.endReason ?? "deleted",
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
        () =>
          this.conversations?.markSessionEnded(conversationId, old.sessionId, nowMs, "deleted") ??
          Promise.resolve(),
      );
    }
    this.logger.info("Session deleted", { conversationId, sessionId: old.sessionId });
  }

  /**
   * Erasure (`DELETE /conversations/{id}`): replaces the session item by an end marker, so the
   * session reads as ended (`deleted`) and is never restarted by a later tool call of the same
   * call, although erasure removes the history that would otherwise say so. The marker holds no
   * call data (no agent, metadata or notify URL) and DynamoDB's TTL removes it after a day, longer
   * than any call lasts; a registration by the app replaces it like any session.
   */
  async erase(conversationId: string): Promise<void> {
    assertValidId(conversationId);
    const nowMs = this.now();
    const marker = erasedMarkerItem(conversationId, nowMs, this.ttlMs);
    const output = await mapTransientErrors(() =>
      this.client.send(new PutCommand({ TableName: this.tableName, Item: marker, ReturnValues: "ALL_OLD" })),
    );
    const old = output.Attributes;
    const wasActive =
      old !== undefined && old.endReason === undefined && isActiveAt(Number(old.expiresAtMs), nowMs);
    this.logger.info("Session ended by the conversation's erasure", {
      conversationId,
      ...(wasActive
        ? { sessionId: String(old?.sessionId), remainingMs: Number(old?.expiresAtMs) - nowMs }
        : {}),
      wasActive,
    });
  }

  /**
   * Ends the active session now because the call is over (ElevenLabs' post-call webhook): the
   * same mechanism as {@link delete}, in one transaction: the session item goes (only if it is
   * still this window and still active) and the meta records `endedAtMs` and the reason. A
   * callback racing it sees the session either live or ended, never half. Answers whether it
   * ended a session (false: none was active).
   */
  async end(conversationId: string, reason: "call_ended" | "deleted"): Promise<boolean> {
    assertValidId(conversationId);
    const output = await mapTransientErrors(() =>
      this.client.send(
        new GetCommand({ TableName: this.tableName, Key: { conversationId }, ConsistentRead: true }),
      ),
    );
    if (!output.Item) return false;
    const session = fromItem(output.Item);
    const nowMs = this.now();
    if (!isActiveAt(session.expiresAtMs, nowMs)) return false;
    const items: TransactItem[] = [
      {
        Delete: {
          TableName: this.tableName,
          Key: { conversationId },
          ConditionExpression: "sessionId = :sid AND expiresAtMs > :now",
          ExpressionAttributeValues: { ":sid": session.sessionId, ":now": nowMs },
        },
      },
    ];
    if (this.conversations) {
      items.push({
        Update: this.conversations.sessionEndUpdate(conversationId, session.sessionId, nowMs, reason),
      });
    }
    const result = await transactWrite(this.client, items);
    if (!result.committed) return false;
    this.logger.info("Session ended before its window closed", {
      conversationId,
      sessionId: session.sessionId,
      reason,
      endedAt: new Date(nowMs).toISOString(),
      remainingMs: session.expiresAtMs - nowMs,
    });
    return true;
  }

  /**
   * The writes that start a session at `nowMs` for a conversation that never had one (a phone
   * agent's first tool call), for the caller's transaction: the session item (only if none
   * exists), its history line and the meta fields of the window. The caller's meta update must
   * carry `attribute_not_exists(lastSession)` (see `ConversationStore.sessionRegistrationWrites`),
   * so an expired or ended session is never restarted and two concurrent first calls start one.
   */
  startWrites(conversationId: string, nowMs: number, context: CallContext = {}): SessionStart {
    assertValidId(conversationId);
    const { session, window } = this.newWindow(conversationId, nowMs, { agentId: context.agentId });
    if (!this.conversations)
      throw new Error("Starting a session from a tool call needs the conversations store");
    // Everything but the meta update, which the caller writes once, with the task's count.
    const [, ...historyLines] = this.conversations.sessionRegistrationWrites(
      conversationId,
      toLastSession(session),
    );
    return {
      session,
      sessionPut: {
        Put: {
          TableName: this.tableName,
          Item: toItem(session, window.ttlEpochSeconds),
          ConditionExpression: "attribute_not_exists(conversationId)",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      },
      historyLines,
      meta: toLastSession(session),
    };
  }

  /** Logs a session a tool call started (the transaction committed). */
  noteStarted(session: Session, toolName: string): void {
    this.logger.info("Session started by the first tool call", {
      conversationId: session.conversationId,
      sessionId: session.sessionId,
      toolName,
      expiresAt: session.expiresAt,
      ttlMs: this.ttlMs,
    });
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
      const state = classifyItem(failedCheck as unknown as Record<string, unknown>, atMs);
      if (state.status === "expired")
        return {
          status: "expired",
          expiredAt: state.expiredAt,
          expiredForMs: state.expiredForMs,
          reason: state.reason,
        };
    }
    const lookup = await this.lookup(conversationId);
    if (lookup.status !== "expired") return { status: "missing" };
    const endedAtMs = Math.min(Date.parse(lookup.expiredAt), atMs);
    return {
      status: "expired",
      expiredAt: new Date(endedAtMs).toISOString(),
      expiredForMs: atMs - endedAtMs,
      reason: lookup.reason,
    };
  }

  /** A new session window of `ttlMs` starting at `nowMs`, with a fresh session id. */
  private newWindow(
    conversationId: string,
    nowMs: number,
    fields: Pick<Session, "agentId" | "notifyUrl" | "metadata">,
  ): { session: Session; window: ReturnType<typeof sessionWindow> } {
    const window = sessionWindow(nowMs, this.ttlMs);
    const session: Session = withoutUndefined({
      conversationId,
      sessionId: randomUUID(),
      createdAt: new Date(nowMs).toISOString(),
      createdAtMs: nowMs,
      expiresAt: new Date(window.expiresAtMs).toISOString(),
      expiresAtMs: window.expiresAtMs,
      ttlMs: this.ttlMs,
      ...fields,
    });
    return { session, window };
  }

  private async lookupItem(conversationId: string): Promise<SessionLookup> {
    assertValidId(conversationId);
    const output = await mapTransientErrors(() =>
      this.client.send(
        new GetCommand({ TableName: this.tableName, Key: { conversationId }, ConsistentRead: true }),
      ),
    );
    if (!output.Item) return { status: "missing" };
    const result = classifyItem(output.Item, this.now());
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

  /** Writes the session and its history records atomically, in one request (upsert). */
  private async putWithHistory(put: PutCommandInput, history: TransactItem[]): Promise<void> {
    const result = await transactWrite(this.client, [{ Put: put } as TransactItem, ...history]);
    if (!result.committed) throw new Error("Unconditional session write was cancelled");
  }
}
