import { createHttpHandler } from "../core/handler.js";
import { listConversations } from "../core/history-api.js";
import { type ConversationDependencies, createConversationDependencies } from "../core/table-dependencies.js";

/** `GET /conversations?limit=&cursor=` */
export const makeHandler = (deps: ConversationDependencies) =>
  createHttpHandler("list-conversations", deps, (request) => listConversations(deps, request));

// Its route reads the conversations table only: no session store.
export const handler = makeHandler(createConversationDependencies());
