import { createHttpHandler } from "../core/handler.js";
import { readConversation } from "../core/history-api.js";
import { type ConversationDependencies, createConversationDependencies } from "../core/table-dependencies.js";

/** `GET /conversations/{conversationId}?limit=&cursor=` */
export const makeHandler = (deps: ConversationDependencies) =>
  createHttpHandler("get-conversation", deps, (request) => readConversation(deps, request));

// Its route reads the conversations table only: no session store.
export const handler = makeHandler(createConversationDependencies());
