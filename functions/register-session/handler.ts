import { createHttpHandler } from "../core/handler.js";
import { registerSession } from "../core/session-api.js";
import { createSessionDependencies, type SessionDependencies } from "../core/session-dependencies.js";

/** `POST /conversations/{conversationId}/session` */
export const makeHandler = (deps: SessionDependencies) =>
  createHttpHandler("register-session", deps, (request) => registerSession(deps, request));

export const handler = makeHandler(createSessionDependencies());
