import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { registerSession } from "../core/session-api.js";

/** `POST /conversations/{conversationId}/session` */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("register-session", deps, (request) => registerSession(deps, request));

export const handler = makeHandler(createDependencies());
