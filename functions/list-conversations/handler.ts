import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { listConversations } from "../core/history-api.js";
import { respond } from "../core/outcomes.js";

/** `GET /conversations?limit=&cursor=` */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("list-conversations", deps, async (request) =>
    respond(await listConversations(deps, request), deps.logger, deps.metrics),
  );

export const handler = makeHandler(createDependencies());
