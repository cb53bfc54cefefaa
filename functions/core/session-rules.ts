/**
 * The expiry rule and the session types, as pure functions of their inputs and `now`: a session
 * registered at `createdAtMs` is active iff `now < createdAtMs + ttlMs` (at +599 999 ms active, at
 * +600 000 ms expired). DynamoDB TTL deletes lazily (often hours late), so expiry is decided here,
 * on every read. SessionStore (session-store.ts) applies this rule to stored items and re-exports
 * everything here; this module imports nothing at run time, so a function that only reads history
 * (or touches no table) carries neither the store nor its input schema (zod) in its bundle.
 */
import type { LastSession, Message } from "./conversation-items.js";

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

/**
 * Why a session window is over: `timed_out` (its 10 minutes ran out), `replaced` (a new
 * registration started a new window first), `deleted` (ended early by a delete) or `call_ended`
 * (ElevenLabs' post-call webhook said the call is over).
 */
export type EndReason = "timed_out" | "replaced" | "deleted" | "call_ended";

/** What `lookup` knows about a conversation's session. */
export type SessionLookup =
  | { readonly status: "active"; readonly session: Session; readonly remainingMs: number }
  | {
      readonly status: "expired";
      readonly session: Session;
      readonly expiredAt: string;
      readonly expiredForMs: number;
      readonly reason: EndReason;
    }
  | { readonly status: "missing" };

/** Why a session is not live at an instant: its window ended (when, how long before, why), or none is known. */
export type InactiveSession =
  | {
      readonly status: "expired";
      readonly expiredAt: string;
      readonly expiredForMs: number;
      readonly reason: EndReason;
    }
  | { readonly status: "missing" };

/** One registration of a session and how its window ended. */
export interface SessionWindow {
  readonly sessionId: string;
  readonly createdAt: string;
  /** The nominal end of the window (`createdAt + ttl`). */
  readonly expiresAt: string;
  /**
   * `active`, or how it ended: `expired` (its window ran out), `replaced` (a new registration
   * started a new window first), `deleted` (ended early by a delete) or `call_ended` (the
   * post-call webhook ended it).
   */
  readonly status: "active" | "expired" | "replaced" | "deleted" | "call_ended";
  /** When it actually ended; absent while active. */
  readonly endedAt?: string;
  /** Why it ended (`expired` is `timed_out`); absent while active. */
  readonly reason?: EndReason;
}

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
export const classify = (
  session: Session,
  nowMs: number,
  endedAtMs?: number,
  endReason: EndReason = "deleted",
): SessionLookup => {
  const end = Math.min(session.expiresAtMs, endedAtMs ?? Number.POSITIVE_INFINITY);
  if (isActiveAt(end, nowMs)) return { status: "active", session, remainingMs: end - nowMs };
  const reason = end < session.expiresAtMs ? endReason : "timed_out";
  return {
    status: "expired",
    session,
    expiredAt: new Date(end).toISOString(),
    expiredForMs: nowMs - end,
    reason,
  };
};

const STATUS_OF_REASON = {
  timed_out: "expired",
  replaced: "replaced",
  deleted: "deleted",
  call_ended: "call_ended",
} as const satisfies Record<EndReason, SessionWindow["status"]>;

interface Registration {
  readonly sessionId: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
}

/**
 * Every session window of a conversation, oldest first, from its `session_registered` lines and
 * the meta's `lastSession` (which also knows an early end). A window ends at the first of: its
 * expiry, the next registration (a refresh starts a new window), or its deletion.
 */
export const sessionWindows = (
  registrations: readonly Message[],
  lastSession: LastSession | undefined,
  nowMs: number,
): SessionWindow[] => {
  const byId = new Map<string, Registration>();
  for (const message of registrations) {
    const expiresAtMs = Date.parse(String(message.data?.expiresAt));
    if (Number.isFinite(expiresAtMs))
      byId.set(message.id, { sessionId: message.id, createdAtMs: message.atMs, expiresAtMs });
  }
  if (lastSession && !byId.has(lastSession.sessionId)) byId.set(lastSession.sessionId, lastSession);
  const ordered = [...byId.values()].sort((a, b) => a.createdAtMs - b.createdAtMs);
  return ordered.map((window, index) => {
    const next = ordered[index + 1];
    const ends: { atMs: number; reason: EndReason }[] = [{ atMs: window.expiresAtMs, reason: "timed_out" }];
    if (next) ends.push({ atMs: next.createdAtMs, reason: "replaced" });
    if (lastSession?.sessionId === window.sessionId && lastSession.endedAtMs !== undefined) {
      ends.push({ atMs: lastSession.endedAtMs, reason: lastSession.endReason ?? "deleted" });
    }
    const end = ends.reduce((first, e) => (e.atMs < first.atMs ? e : first));
    const base = {
      sessionId: window.sessionId,
      createdAt: new Date(window.createdAtMs).toISOString(),
      expiresAt: new Date(window.expiresAtMs).toISOString(),
    };
    return isActiveAt(end.atMs, nowMs)
      ? { ...base, status: "active" }
      : {
          ...base,
          status: STATUS_OF_REASON[end.reason],
          endedAt: new Date(end.atMs).toISOString(),
          reason: end.reason,
        };
  });
};
