import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { eraseConversation } from "../core/erase-api.js";
import { createHttpHandler } from "../core/handler.js";

/** `DELETE /conversations/{conversationId}` */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("delete-conversation", deps, (request) => eraseConversation(deps, request));

export const handler = makeHandler(createDependencies());
