import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { readConversation } from "../core/history-api.js";

/** `GET /conversations/{conversationId}?limit=&cursor=` */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("get-conversation", deps, (request) => readConversation(deps, request));

export const handler = makeHandler(createDependencies());
