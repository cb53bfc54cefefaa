import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { listConversations } from "../core/history-api.js";

/** `GET /conversations?limit=&cursor=` */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("list-conversations", deps, (request) => listConversations(deps, request));

export const handler = makeHandler(createDependencies());
