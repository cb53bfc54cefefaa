import type { LastSession } from "./conversation-items.js";
import { withoutUndefined } from "./objects.js";
import { classify, type Session, type SessionLookup } from "./session-rules.js";
import { SESSIONS_TABLE } from "./table-schema.js";

/**
 * The sessions table's items and the session window kept in a conversation's meta, mapped to and
 * from the domain `Session` (the store in session-store.ts applies the expiry rule to them).
 */

/** The session id of the end marker an erasure leaves (see {@link SessionStore.erase}). */
export const ERASED_SESSION_ID = "erased";
/** How long the erasure's end marker is kept: longer than any call lasts. */
const ERASED_MARKER_KEPT_MS = 24 * 60 * 60 * 1000;

/** The item an erasure leaves in place of the session (see {@link SessionStore.erase}). */
export const erasedMarkerItem = (conversationId: string, nowMs: number, ttlMs: number) => ({
  [SESSIONS_TABLE.partitionKey]: conversationId,
  sessionId: ERASED_SESSION_ID,
  createdAt: new Date(nowMs).toISOString(),
  createdAtMs: nowMs,
  // Ends now: the live-session condition of every tool call and callback fails from here on.
  expiresAtMs: nowMs,
  ttlMs,
  endReason: "deleted",
  [SESSIONS_TABLE.ttlAttribute]: Math.ceil((nowMs + ERASED_MARKER_KEPT_MS) / 1000),
});

/** Classifies a stored item; an end marker (erasure) is over since it was written, as `deleted`. */
export const classifyItem = (item: Record<string, unknown>, nowMs: number): SessionLookup => {
  const state = classify(fromItem(item), nowMs);
  return state.status === "expired" && item.endReason === "deleted" ? { ...state, reason: "deleted" } : state;
};

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

export const toItem = (session: Session, ttlEpochSeconds: number): Record<string, unknown> =>
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

export const toLastSession = (s: Session): LastSession =>
  withoutUndefined({
    sessionId: s.sessionId,
    createdAt: s.createdAt,
    createdAtMs: s.createdAtMs,
    expiresAtMs: s.expiresAtMs,
    ttlMs: s.ttlMs,
    agentId: s.agentId,
    notifyUrl: s.notifyUrl,
  });

export const fromLastSession = (conversationId: string, last: LastSession): Session =>
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
