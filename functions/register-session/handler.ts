import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { respond } from "../core/outcomes.js";
import { registerSession } from "../core/session-api.js";

/** `POST /conversations/{conversationId}/session` */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("register-session", deps, async (request) =>
    respond(await registerSession(deps, request), deps.logger, deps.metrics),
  );

export const handler = makeHandler(createDependencies());
