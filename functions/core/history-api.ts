import type { Clock } from "./clock.js";
import type { ConversationStore } from "./conversation-store.js";
import { ValidationError } from "./errors.js";
import { errorBody, type HttpRequest } from "./http.js";
import { assertValidId } from "./ids.js";
import type { Outcome } from "./outcomes.js";
import { sessionWindows } from "./session-rules.js";
import { publicTask } from "./task-dispatch.js";

/** What the history routes need. */
export interface HistoryDeps {
  readonly conversations: ConversationStore;
  readonly now: Clock;
}

/** `limit` (1–100) and the opaque `cursor` of the previous page. */
const readPaging = (query: Readonly<Record<string, string>>): { limit?: number; cursor?: string } => {
  const { limit, cursor } = query;
  if (limit !== undefined && !/^\d{1,3}$/.test(limit)) {
    throw new ValidationError(
      "limit must be a whole number from 1 to 100.",
      ["query.limit"],
      "invalid_limit",
    );
  }
  // The store checks the range and decodes the cursor (400 invalid_limit / invalid_cursor).
  return { ...(limit !== undefined ? { limit: Number(limit) } : {}), ...(cursor ? { cursor } : {}) };
};

/**
 * The store names a bad `limit` or `cursor` by its own argument; to the caller they are query
 * parameters, named `query.<name>` like every other detail of a 400.
 */
const asQueryProblem = (error: unknown): never => {
  if (error instanceof ValidationError && error.details.every((d) => d === "limit" || d === "cursor")) {
    throw new ValidationError(
      error.message,
      error.details.map((d) => `query.${d}`),
      error.code,
    );
  }
  throw error;
};

/** `GET /conversations?limit=&cursor=`: conversations, newest first. */
export const listConversations = async (deps: HistoryDeps, request: HttpRequest): Promise<Outcome> => {
  const page = await deps.conversations.listConversations(readPaging(request.query)).catch(asQueryProblem);
  return {
    kind: "conversations_listed",
    body: { conversations: page.conversations, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) },
    log: { count: page.conversations.length, more: page.nextCursor !== undefined },
  };
};

/**
 * `GET /conversations/{conversationId}?limit=&cursor=`: meta, one page of messages in history
 * order, every task with its outcome (never its token hash) and every session window with how
 * it ended. Works the same long after the sessions expired: none of it lives in the sessions table.
 */
export const readConversation = async (deps: HistoryDeps, request: HttpRequest): Promise<Outcome> => {
  const conversationId = request.pathParameters.conversationId;
  assertValidId(conversationId);
  const page = await deps.conversations
    .getConversation(conversationId, readPaging(request.query))
    .catch(asQueryProblem);
  if (!page) {
    return {
      kind: "conversation_not_found",
      body: errorBody("conversation_not_found", "No history exists for this conversation."),
      log: { conversationId },
    };
  }
  // Sessions and tasks come with the first page only: later pages cost one page of lines.
  const nowMs = deps.now();
  const sessions = page.registrations
    ? sessionWindows(page.registrations, page.meta.lastSession, nowMs)
    : undefined;
  return {
    kind: "history_read",
    body: {
      meta: page.meta,
      ...(sessions ? { sessions } : {}),
      messages: page.messages,
      // In the order they started (the store sorts them; task ids are random).
      ...(page.tasks ? { tasks: page.tasks.map((task) => publicTask(task, nowMs)) } : {}),
      ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
    },
    log: {
      conversationId,
      messageCount: page.messages.length,
      ...(page.tasks ? { taskCount: page.tasks.length } : {}),
      ...(sessions ? { sessionCount: sessions.length } : {}),
      more: page.nextCursor !== undefined,
    },
  };
};
