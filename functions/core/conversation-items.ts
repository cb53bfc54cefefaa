import { ValidationError } from "./errors.js";
import { assertValidId, ID_PATTERN } from "./ids.js";
import { withoutUndefined } from "./objects.js";
import { CONVERSATIONS_TABLE } from "./table-schema.js";

// The conversations table's items: key layout, the domain types its items map to, the mappers
// and the opaque page cursor. No I/O: conversation-store.ts and task-store.ts write and read them.

/** The last session window of a conversation, kept in its meta record (which has no TTL). */
export interface LastSession {
  readonly sessionId: string;
  readonly createdAt: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly ttlMs: number;
  readonly agentId?: string;
  readonly notifyUrl?: string;
  /** Set when the session was ended before its window closed. */
  readonly endedAtMs?: number;
  /** Why it ended early: a delete, or the post-call webhook (the call is over). */
  readonly endReason?: "deleted" | "call_ended";
}

/** The conversation's `meta` record. */
export interface ConversationMeta {
  readonly conversationId: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly status: string;
  readonly agentId?: string;
  readonly lastSession?: LastSession;
  readonly sessionCount: number;
  readonly taskCount: number;
  /** Post-call analysis and other call facts, written by the post-call webhook. */
  readonly call?: Record<string, unknown>;
  /**
   * Why no transcript will come, as reconciliation recorded it once: ElevenLabs answered 404
   * (`not_found`) or `status: "failed"`, or it kept failing and reconciliation gave up.
   */
  readonly transcriptUnavailable?: {
    readonly reason: "not_found" | "failed" | "gave_up";
    readonly at: string;
  };
  /** How the first session started when a tool call started it (phone agents), with the call facts it carried. */
  readonly sessionStart?: Record<string, unknown>;
  /**
   * When the retention period (`HISTORY_RETENTION_DAYS`) ends: the conversation's first write plus
   * the period. From then on it reads as not found, and DynamoDB's TTL deletes its items. Absent
   * when it was written without retention (kept until erased).
   */
  readonly retainedUntil?: string;
}

/** Kinds of history lines. */
export type MessageKind =
  | "transcript"
  | "session_registered"
  | "task_started"
  | "task_result"
  | "call_analysis"
  | "call_initiation_failure";

/** A line of history to append. Its key is deterministic, so appending it twice stores it once. */
export interface MessageInput {
  readonly kind: MessageKind;
  /** When it happened (epoch ms): the sort order of the history. */
  readonly atMs: number;
  /** Tie-breaker for lines at the same millisecond (e.g. the transcript index). */
  readonly seq?: number;
  /** Stable id of the line (transcript: `<eventKey>-<index>`; task result: the task id). */
  readonly id: string;
  readonly role?: string;
  readonly text?: string;
  readonly data?: Record<string, unknown>;
}

/** A stored history line. */
export interface Message extends MessageInput {
  readonly at: string;
}

/** Outcome of a task result, decided once and stored with the task. */
export type TaskOutcome = "delivered" | "delivery_failed" | "session_expired";

/** A tool task recorded in the conversation. */
export interface TaskRecord {
  readonly taskId: string;
  readonly toolName: string;
  readonly params: Record<string, unknown>;
  readonly status: "pending" | "completed";
  readonly createdAt: string;
  /**
   * `pending` from the create transaction until the tool call handed the task to the runners,
   * then `sent` (with `dispatchedAt`). A task never sent reads as `abandoned` (task-dispatch.ts).
   * Absent on tasks recorded before the marker existed.
   */
  readonly dispatch?: "pending" | "sent";
  readonly dispatchedAt?: string;
  readonly sessionId?: string;
  /** Where the session wanted live results pushed when the task started. */
  readonly notifyUrl?: string;
  /** SHA-256 hex of the per-task bearer token; the token itself is never stored. */
  readonly tokenHash: string;
  readonly result?: unknown;
  readonly outcome?: TaskOutcome;
  /**
   * The live push of a delivered result: `pending` (stored, not yet pushed), `claimed` (one request
   * is pushing it; never pushed twice), `done` or `failed`. Absent when there is nothing to push.
   */
  readonly push?: "pending" | "claimed" | "done" | "failed";
  readonly resultAt?: string;
  readonly expiredAt?: string;
  readonly expiredForMs?: number;
  /** Why the session was over when a `session_expired` result arrived (`timed_out`, `call_ended`...). */
  readonly endReason?: string;
}

export const META_SK = "meta";
export const MSG_PREFIX = "msg#";
export const TASK_PREFIX = "task#";
/** Session windows, one item per registration, apart from the lines so a page never re-reads them. */
export const WINDOW_PREFIX = "win#";
/** The listing index's partition key before it was sharded: still read, never written. */
export const LEGACY_LIST_PK = "conversation";
/** How many partition keys the listing index spreads new conversations over. */
export const LIST_SHARDS = 16;

/** FNV-1a (32-bit) of a string: a cheap, stable, well-spread hash. */
const fnv1a = (value: string): number => {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
};

/**
 * The listing index partition key of a conversation: `conversation#<00-15>`, from a hash of its
 * id, so new conversations spread evenly over {@link LIST_SHARDS} keys instead of one hot one.
 */
export const listPartitionKey = (conversationId: string): string =>
  `${LEGACY_LIST_PK}#${String(fnv1a(conversationId) % LIST_SHARDS).padStart(2, "0")}`;

/** Every listing partition key a read merges: the shards, then the legacy key of items not yet migrated. */
export const listPartitionKeys = (): string[] => [
  ...Array.from({ length: LIST_SHARDS }, (_, shard) => `${LEGACY_LIST_PK}#${String(shard).padStart(2, "0")}`),
  LEGACY_LIST_PK,
];
const MAX_PAGE = 100;

const pad = (value: number, width: number) => String(Math.max(0, Math.trunc(value))).padStart(width, "0");
export const iso = (ms: number) => new Date(ms).toISOString();

/** `msg#<15-digit epoch ms>#<6-digit seq>#<kind>#<id>`: sorts by time, then sequence, and is deterministic. */
export const messageSortKey = (m: Pick<MessageInput, "atMs" | "seq" | "kind" | "id">): string =>
  `${MSG_PREFIX}${pad(m.atMs, 15)}#${pad(m.seq ?? 0, 6)}#${m.kind}#${m.id}`;

/** `win#<15-digit epoch ms>#<session id>`: a session window, in registration order. */
export const windowSortKey = (atMs: number, sessionId: string): string =>
  `${WINDOW_PREFIX}${pad(atMs, 15)}#${sessionId}`;

export const taskSortKey = (taskId: string): string => `${TASK_PREFIX}${taskId}`;

/** The stored item of a history line. */
export const messageItem = (conversationId: string, m: MessageInput): Record<string, unknown> => {
  assertValidId(m.id, "messageId");
  return withoutUndefined({
    conversationId,
    sk: messageSortKey(m),
    kind: m.kind,
    at: iso(m.atMs),
    atMs: m.atMs,
    seq: m.seq ?? 0,
    id: m.id,
    role: m.role,
    text: m.text,
    data: m.data,
  });
};

/** Create-if-absent meta fields plus `updatedAt`, as one update expression (every write touches the meta). */
export const metaTouch = (conversationId: string, at: string, agentId?: string, status?: string) => {
  const { listIndex } = CONVERSATIONS_TABLE;
  const values: Record<string, unknown> = {
    ":at": at,
    ":listPk": listPartitionKey(conversationId),
    ":listSk": `${at}#${conversationId}`,
    ":status": status ?? "active",
  };
  let expression =
    "SET createdAt = if_not_exists(createdAt, :at), updatedAt = :at, #listPk = :listPk, " +
    "#listSk = if_not_exists(#listSk, :listSk), " +
    (status ? "#status = :status" : "#status = if_not_exists(#status, :status)");
  if (agentId) {
    expression += ", agentId = if_not_exists(agentId, :agentId)";
    values[":agentId"] = agentId;
  }
  return {
    Key: { conversationId, sk: META_SK },
    UpdateExpression: expression,
    ExpressionAttributeNames: {
      "#listPk": listIndex.partitionKey,
      "#listSk": listIndex.sortKey,
      "#status": "status",
    },
    ExpressionAttributeValues: values,
  };
};

const PURGE_AT = CONVERSATIONS_TABLE.retentionTtlAttribute;

/**
 * The retention attribute of an item written at `writtenAtMs` when history is kept for
 * `retentionMs`: `purgeAt`, epoch **seconds**, rounded up (the conversations table's TTL
 * attribute when retention is on), so DynamoDB never deletes an item before its conversation
 * stops being readable. Nothing at all when retention is off: items stay as they always were.
 */
export const retentionFields = (
  writtenAtMs: number,
  retentionMs: number | undefined,
): { purgeAt?: number } =>
  retentionMs === undefined ? {} : { [PURGE_AT]: Math.ceil((writtenAtMs + retentionMs) / 1000) };

/**
 * A {@link metaTouch} that also anchors the conversation's retention on its first write:
 * `purgeAtMs` (the exact end, which reads check) and `purgeAt` (its TTL attribute), both
 * `if_not_exists`, so later writes never move them. The same as `touch` when retention is off.
 */
export const withRetentionAnchor = <T extends ReturnType<typeof metaTouch>>(
  touch: T,
  atMs: number,
  retentionMs: number | undefined,
): T => {
  if (retentionMs === undefined) return touch;
  const purgeAtMs = atMs + retentionMs;
  return {
    ...touch,
    UpdateExpression: `${touch.UpdateExpression}, ${PURGE_AT} = if_not_exists(${PURGE_AT}, :purgeAt), purgeAtMs = if_not_exists(purgeAtMs, :purgeAtMs)`,
    ExpressionAttributeValues: {
      ...touch.ExpressionAttributeValues,
      ":purgeAt": Math.ceil(purgeAtMs / 1000),
      ":purgeAtMs": purgeAtMs,
    },
  };
};

/** Whether a conversation's retention period is over at `nowMs` (never, when it has none). */
export const retentionOver = (meta: ConversationMeta, nowMs: number): boolean =>
  meta.retainedUntil !== undefined && nowMs >= Date.parse(meta.retainedUntil);

export const clampLimit = (limit: number | undefined) => {
  if (limit === undefined) return 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new ValidationError(
      `limit must be a whole number from 1 to ${MAX_PAGE}.`,
      ["limit"],
      "invalid_limit",
    );
  }
  return limit;
};

/** Cursors are opaque to callers: base64url of the last evaluated key. */
export const encodeCursor = (key: Record<string, unknown>): string =>
  Buffer.from(JSON.stringify(key), "utf8").toString("base64url");

const MESSAGE_SK = /^msg#\d{15}#\d{6}#[a-z_]{1,40}#[A-Za-z0-9_-]{1,128}$/;
const LIST_SK = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z#[A-Za-z0-9_-]{1,128}$/;

/** `<ISO instant>#<conversation id>`, a `listSk` the service writes (the instant a real one). */
const isListPosition = (position: string): boolean => {
  if (!LIST_SK.test(position)) return false;
  const at = position.slice(0, 24);
  const ms = Date.parse(at);
  return Number.isFinite(ms) && new Date(ms).toISOString() === at;
};

const hasExactly = (record: Record<string, unknown>, keys: readonly string[]) => {
  const own = Object.keys(record);
  return own.length === keys.length && keys.every((k) => typeof record[k] === "string");
};

/**
 * Whether a decoded cursor is one this API could have returned for that query. A history cursor
 * is exactly the table's key, in the requested conversation's history lines; anything else would
 * reach DynamoDB as an `ExclusiveStartKey` it refuses (a 500), or page another conversation's
 * history. A listing cursor is `{ listSk }` (or the whole index key, as the unsharded index's
 * cursors were) with a `listSk` of the form `<ISO time>#<conversation id>`.
 */
const isCursorKey = (record: Record<string, unknown>, conversationId: string | undefined): boolean => {
  const { partitionKey, sortKey, listIndex } = CONVERSATIONS_TABLE;
  if (conversationId !== undefined) {
    return (
      hasExactly(record, [partitionKey, sortKey]) &&
      record[partitionKey] === conversationId &&
      MESSAGE_SK.test(String(record[sortKey]))
    );
  }
  const position = String(record[listIndex.sortKey]);
  if (hasExactly(record, [listIndex.sortKey])) return isListPosition(position);
  const id = String(record[partitionKey]);
  return (
    hasExactly(record, [partitionKey, sortKey, listIndex.partitionKey, listIndex.sortKey]) &&
    ID_PATTERN.test(id) &&
    record[sortKey] === META_SK &&
    listPartitionKeys().includes(String(record[listIndex.partitionKey])) &&
    isListPosition(position) &&
    position.endsWith(`#${id}`)
  );
};

const invalidCursor = () =>
  new ValidationError("cursor is not a cursor this API returned.", ["cursor"], "invalid_cursor");

/** The JSON object a cursor encodes, or a 400 `invalid_cursor`. */
const parseCursor = (cursor: string): Record<string, unknown> => {
  if (cursor.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalidCursor();
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor();
  }
  if (!key || typeof key !== "object" || Array.isArray(key)) throw invalidCursor();
  return key as Record<string, unknown>;
};

/**
 * Decodes a cursor for one conversation's history (`conversationId`) or for the conversation
 * list (no `conversationId`); anything it could not have been is a 400 `invalid_cursor`.
 */
export const decodeCursor = (cursor: string, conversationId?: string): Record<string, unknown> => {
  const record = parseCursor(cursor);
  if (!isCursorKey(record, conversationId)) throw invalidCursor();
  return record;
};

/**
 * Decodes a resume key of a scan over the whole table (`npm run migrate -- --from`): exactly the
 * table's key, any item's. Anything else is a 400 `invalid_cursor`.
 */
export const decodeTableKey = (cursor: string): Record<string, unknown> => {
  const record = parseCursor(cursor);
  const { partitionKey, sortKey } = CONVERSATIONS_TABLE;
  if (!hasExactly(record, [partitionKey, sortKey]) || !ID_PATTERN.test(String(record[partitionKey])))
    throw invalidCursor();
  return record;
};

const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const num = (v: unknown) => (typeof v === "number" ? v : undefined);

export const toMeta = (item: Record<string, unknown>): ConversationMeta =>
  withoutUndefined({
    conversationId: String(item.conversationId),
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
    status: str(item.status) ?? "active",
    agentId: str(item.agentId),
    lastSession: item.lastSession as LastSession | undefined,
    sessionCount: num(item.sessionCount) ?? 0,
    taskCount: num(item.taskCount) ?? 0,
    call: item.call as Record<string, unknown> | undefined,
    transcriptUnavailable: transcriptUnavailable(item),
    sessionStart: item.sessionStart as Record<string, unknown> | undefined,
    retainedUntil: typeof item.purgeAtMs === "number" ? iso(item.purgeAtMs) : undefined,
  }) as ConversationMeta;

/** Set by reconciliation (`reconcileOutcome`, see transcript-backlog.ts) when no transcript will come. */
const transcriptUnavailable = (item: Record<string, unknown>): ConversationMeta["transcriptUnavailable"] => {
  const reason = item.reconcileOutcome;
  return reason === "not_found" || reason === "failed" || reason === "gave_up"
    ? { reason, at: String(item.reconcileOutcomeAt) }
    : undefined;
};

export const toTask = (item: Record<string, unknown>): TaskRecord =>
  withoutUndefined({
    taskId: String(item.taskId),
    toolName: String(item.toolName),
    params: (item.params as Record<string, unknown>) ?? {},
    status: item.status === "completed" ? "completed" : "pending",
    createdAt: String(item.createdAt),
    dispatch: str(item.dispatch) as TaskRecord["dispatch"],
    dispatchedAt: str(item.dispatchedAt),
    sessionId: str(item.sessionId),
    notifyUrl: str(item.notifyUrl),
    tokenHash: String(item.tokenHash),
    result: item.result,
    outcome: str(item.outcome) as TaskOutcome | undefined,
    push: str(item.push) as TaskRecord["push"],
    resultAt: str(item.resultAt),
    expiredAt: str(item.expiredAt),
    expiredForMs: num(item.expiredForMs),
    endReason: str(item.endReason),
  }) as TaskRecord;

export const toMessage = (item: Record<string, unknown>): Message =>
  withoutUndefined({
    kind: item.kind as MessageKind,
    at: String(item.at),
    atMs: Number(item.atMs),
    seq: num(item.seq) ?? 0,
    id: String(item.id),
    role: str(item.role),
    text: str(item.text),
    data: item.data as Record<string, unknown> | undefined,
  }) as Message;
