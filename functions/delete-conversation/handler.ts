import { eraseConversation } from "../core/erase-api.js";
import { createHttpHandler } from "../core/handler.js";
import { createSessionDependencies, type SessionDependencies } from "../core/session-dependencies.js";

/** `DELETE /conversations/{conversationId}` */
export const makeHandler = (deps: SessionDependencies) =>
  createHttpHandler("delete-conversation", deps, (request) => eraseConversation(deps, request));

export const handler = makeHandler(createSessionDependencies());
