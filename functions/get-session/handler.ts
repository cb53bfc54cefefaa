import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { respond } from "../core/outcomes.js";
import { readSession } from "../core/session-api.js";

/** `GET /conversations/{conversationId}/session` */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("get-session", deps, async (request) =>
    respond(await readSession(deps, request), deps.logger, deps.metrics),
  );

export const handler = makeHandler(createDependencies());
