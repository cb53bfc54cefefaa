import * as z from "zod/mini";
import type { HttpRequest } from "./http.js";
import { parseJsonBody } from "./http.js";
import { assertValidId } from "./ids.js";
import { once } from "./objects.js";
import type { Outcome } from "./outcomes.js";
import type { Session, SessionStore } from "./session-store.js";
import { parseWith } from "./validation.js";

/** What the session routes need. */
export interface SessionApiDeps {
  readonly sessions: SessionStore;
}

const registerBodySchema = once(() =>
  z.strictObject({
    agentId: z.optional(z.string()),
    notifyUrl: z.optional(z.string()),
    metadata: z.optional(z.record(z.string(), z.unknown())),
  }),
);

const publicSession = (session: Session) => ({
  conversationId: session.conversationId,
  sessionId: session.sessionId,
  createdAt: session.createdAt,
  expiresAt: session.expiresAt,
  ttlSeconds: session.ttlMs / 1000,
  ...(session.agentId ? { agentId: session.agentId } : {}),
  ...(session.notifyUrl ? { notifyUrl: session.notifyUrl } : {}),
  ...(session.metadata ? { metadata: session.metadata } : {}),
});

/** `POST /conversations/{conversationId}/session`: registers or refreshes (new 10-minute window). */
export const registerSession = async (deps: SessionApiDeps, request: HttpRequest): Promise<Outcome> => {
  const conversationId = request.pathParameters.conversationId;
  assertValidId(conversationId);
  // Shape first (a clear 400 for junk), then the store validates the values before any write.
  const raw = parseJsonBody(request, { allowEmpty: true });
  const body = parseWith(registerBodySchema(), raw, "body");
  // The metadata as parsed from JSON, not zod's copy (which drops a `__proto__` key): the store checks it.
  const metadata = body.metadata ? (raw as { metadata: unknown }).metadata : undefined;
  const session = await deps.sessions.set(conversationId, {
    ...body,
    ...(metadata ? { metadata } : {}),
  } as Parameters<SessionStore["set"]>[1]);
  return {
    kind: "session_registered",
    body: publicSession(session),
    log: { conversationId, sessionId: session.sessionId, expiresAt: session.expiresAt },
  };
};

/** `GET /conversations/{conversationId}/session`: 200 active, 410 expired, 404 never registered. */
export const readSession = async (deps: SessionApiDeps, request: HttpRequest): Promise<Outcome> => {
  const conversationId = request.pathParameters.conversationId;
  assertValidId(conversationId);
  const result = await deps.sessions.lookup(conversationId);
  switch (result.status) {
    case "active":
      return {
        kind: "session_active",
        body: { status: "active", ...publicSession(result.session), remainingMs: result.remainingMs },
        log: { conversationId, remainingMs: result.remainingMs },
      };
    case "expired":
      return {
        kind: "session_expired",
        body: {
          error: "session_expired",
          message: `The session expired at ${result.expiredAt}.`,
          conversationId,
          expiredAt: result.expiredAt,
          expiredForMs: result.expiredForMs,
          reason: result.reason,
        },
        log: {
          conversationId,
          expiredAt: result.expiredAt,
          expiredForMs: result.expiredForMs,
          reason: result.reason,
        },
      };
    case "missing":
      return {
        kind: "session_not_found",
        body: {
          error: "session_not_found",
          message: "No session was ever registered for this conversation.",
          conversationId,
        },
        log: { conversationId },
      };
  }
};
