import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { readSession } from "../core/session-api.js";

/** `GET /conversations/{conversationId}/session` */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("get-session", deps, (request) => readSession(deps, request));

export const handler = makeHandler(createDependencies());
