import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { readConversation } from "../core/history-api.js";
import { respond } from "../core/outcomes.js";

/** `GET /conversations/{conversationId}?limit=&cursor=` */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("get-conversation", deps, async (request) =>
    respond(await readConversation(deps, request), deps.logger, deps.metrics),
  );

export const handler = makeHandler(createDependencies());
