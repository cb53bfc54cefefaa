import { createDependencies, type Dependencies } from "../core/dependencies.js";
import type { TaskDispatcher } from "../core/dispatcher.js";
import { createHttpHandler } from "../core/handler.js";
import { createDispatcher } from "../core/task-queue.js";
import { callTool } from "../core/tool-api.js";

/** `POST /tools/{toolName}`: the ElevenLabs server-tool webhook. */
export const makeHandler = (deps: Dependencies & { dispatcher: TaskDispatcher }) =>
  createHttpHandler("call-tool", deps, (request) =>
    callTool(
      {
        ...deps,
        publicBaseUrl: deps.config.publicBaseUrl,
        exposeCallbackInToolResponse: deps.config.exposeCallbackInToolResponse,
        sessionStart: deps.config.sessionStart,
        inlineWaitMs: deps.config.toolInlineWaitMs,
      },
      request,
    ),
  );

const deps = createDependencies(process.env, {}, ["tables", "publicBaseUrl"]);
export const handler = makeHandler({ ...deps, dispatcher: createDispatcher(deps.config, deps.logger) });
