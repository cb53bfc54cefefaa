import { createHttpHandler } from "../core/handler.js";
import { listConversations } from "../core/history-api.js";
import { respond } from "../core/outcomes.js";
import { type ConversationDependencies, createConversationDependencies } from "../core/table-dependencies.js";

/** `GET /conversations?limit=&cursor=` */
export const makeHandler = (deps: ConversationDependencies) =>
  createHttpHandler("list-conversations", deps, async (request) =>
    respond(await listConversations(deps, request), deps.logger, deps.metrics),
  );

// Its route reads the conversations table only: no session store.
export const handler = makeHandler(createConversationDependencies());
