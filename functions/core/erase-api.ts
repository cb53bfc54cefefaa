import type { ConversationStore } from "./conversation-store.js";
import type { HttpRequest } from "./http.js";
import { assertValidId } from "./ids.js";
import type { Outcome } from "./outcomes.js";
import type { SessionStore } from "./session-store.js";

/** What erasing a conversation needs. */
export interface EraseDeps {
  readonly sessions: Pick<SessionStore, "erase">;
  readonly conversations: Pick<ConversationStore, "eraseConversation">;
  readonly now: () => number;
}

/**
 * `DELETE /conversations/{conversationId}`: the session ends first (an end marker replaces its
 * item), so the live-session condition of every tool call and callback fails from then on, and
 * a later tool call of the same call starts nothing; then every history line and task, then the meta. Idempotent: erasing
 * again (or a conversation never seen) answers the same with `itemsDeleted: 0`. The log line has
 * who (the service token's caller, by request id) and when, never contents.
 */
export const eraseConversation = async (deps: EraseDeps, request: HttpRequest): Promise<Outcome> => {
  const conversationId = request.pathParameters.conversationId;
  assertValidId(conversationId);
  await deps.sessions.erase(conversationId);
  const itemsDeleted = await deps.conversations.eraseConversation(conversationId);
  const erasedAt = new Date(deps.now()).toISOString();
  return {
    kind: "conversation_erased",
    body: { conversationId, erased: true, itemsDeleted, erasedAt },
    log: { conversationId, itemsDeleted, erasedAt, by: "service token", requestId: request.requestId },
  };
};
