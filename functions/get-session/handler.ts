import { createHttpHandler } from "../core/handler.js";
import { readSession } from "../core/session-api.js";
import { createSessionDependencies, type SessionDependencies } from "../core/session-dependencies.js";

/** `GET /conversations/{conversationId}/session` */
export const makeHandler = (deps: SessionDependencies) =>
  createHttpHandler("get-session", deps, (request) => readSession(deps, request));

export const handler = makeHandler(createSessionDependencies());
