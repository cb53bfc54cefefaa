import { randomUUID } from "node:crypto";
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
} from "@aws-sdk/lib-dynamodb";
import * as z from "zod/mini";
import { type Clock, systemClock } from "./clock.js";
import type { ConversationStore, LastSession } from "./conversation-store.js";
import { guard, type TransactItem, transactWrite } from "./dynamo.js";
import { assertValidId, ID_PATTERN } from "./ids.js";
import { withoutUndefined } from "./objects.js";
import { type AppLogger, logger as defaultLogger } from "./powertools.js";
import { SESSIONS_TABLE } from "./table-schema.js";
import { parseWith } from "./validation.js";

/** A session lasts exactly this long unless `SESSION_TTL_MS` says otherwise (demos, tests). */
export const DEFAULT_SESSION_TTL_MS = 600_000;

/** What the caller may attach to a session. */
export interface SessionInput {
  /** The ElevenLabs agent id. */
  readonly agentId?: string;
  /** Where live task results are pushed (signed POST) while the session is active. */
  readonly notifyUrl?: string;
  /** Small, flat caller data kept with the session (≤ 20 keys, ≤ 2 KB as JSON). */
  readonly metadata?: Record<string, string | number | boolean>;
}

/** A session window as the application sees it. */
export interface Session {
  readonly conversationId: string;
  /** Random id of this registration: a refresh gets a new one. */
  readonly sessionId: string;
  readonly createdAt: string;
  readonly createdAtMs: number;
  /** ISO instant of expiry (`createdAt + ttlMs`), to the millisecond. */
  readonly expiresAt: string;
  readonly expiresAtMs: number;
  readonly ttlMs: number;
  readonly agentId?: string;
  readonly notifyUrl?: string;
  readonly metadata?: Record<string, string | number | boolean>;
}

/** What `lookup` knows about a conversation's session. */
export type SessionLookup =
  | { readonly status: "active"; readonly session: Session; readonly remainingMs: number }
  | {
      readonly status: "expired";
      readonly session: Session;
      readonly expiredAt: string;
      readonly expiredForMs: number;
    }
  | { readonly status: "missing" };

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

const METADATA_MAX_BYTES = 2048;

/** What a registration may carry, value by value (also the OpenAPI document's source). */
export const sessionInputSchema = z.strictObject({
  agentId: z.optional(z.string().check(z.regex(ID_PATTERN))),
  notifyUrl: z.optional(z.url({ protocol: /^https?$/ }).check(z.maxLength(2048))),
  metadata: z.optional(
    z
      .record(
        z.string().check(z.maxLength(64)),
        z.union([z.string().check(z.maxLength(512)), z.number(), z.boolean()]),
      )
      .check(
        z.refine((m) => Object.keys(m).length <= 20, "must have at most 20 keys"),
        z.refine(
          (m) => Buffer.byteLength(JSON.stringify(m)) <= METADATA_MAX_BYTES,
          `must be at most ${METADATA_MAX_BYTES} bytes as JSON`,
        ),
      ),
  ),
});

// ---------------------------------------------------------------------------------------------
// The expiry rule. Pure functions of their inputs and `now`: this file is the only place that
// knows it. DynamoDB TTL deletes lazily (often hours late), so expiry is decided here, on read.
// ---------------------------------------------------------------------------------------------

/** The stored window of a session registered at `createdAtMs`. */
export const sessionWindow = (createdAtMs: number, ttlMs: number) => {
  const expiresAtMs = createdAtMs + ttlMs;
  return {
    createdAtMs,
    expiresAtMs,
    // Rounded up: DynamoDB may only ever delete an item the application already treats as expired.
    ttlEpochSeconds: Math.ceil(expiresAtMs / 1000),
  };
};

/** Active iff `now < expiresAtMs`: at +599 999 ms active, at +600 000 ms expired. */
export const isActiveAt = (expiresAtMs: number, nowMs: number): boolean => nowMs < expiresAtMs;

/** Classifies a session window at `nowMs`. */
export const classify = (session: Session, nowMs: number, endedAtMs?: number): SessionLookup => {
  const end = Math.min(session.expiresAtMs, endedAtMs ?? Number.POSITIVE_INFINITY);
  if (isActiveAt(end, nowMs)) return { status: "active", session, remainingMs: end - nowMs };
  return { status: "expired", session, expiredAt: new Date(end).toISOString(), expiredForMs: nowMs - end };
};

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
    const parsed = parseWith(sessionInputSchema, input, "session");
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
    const output = await guard(() =>
      this.client.send(
        new DeleteCommand({ TableName: this.tableName, Key: { conversationId }, ReturnValues: "ALL_OLD" }),
      ),
    );
    const old = output.Attributes ? fromItem(output.Attributes) : undefined;
    if (!old) return;
    const nowMs = this.now();
    if (this.conversations && isActiveAt(old.expiresAtMs, nowMs)) {
      await guard(
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

  private async lookupItem(conversationId: string): Promise<SessionLookup> {
    assertValidId(conversationId);
    const output = await guard(() =>
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
    const output = await guard(() => this.client.send(new PutCommand({ ...put, ReturnValues: "ALL_OLD" })));
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
export const fromItem = (item: Record<string, unknown>): Session =>
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
