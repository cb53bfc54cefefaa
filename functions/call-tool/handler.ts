import { createDependencies, type Dependencies } from "../core/dependencies.js";
import type { TaskDispatcher } from "../core/dispatcher.js";
import { createHttpHandler } from "../core/handler.js";
import { respond } from "../core/outcomes.js";
import { createDispatcher } from "../core/task-queue.js";
import { callTool } from "../core/tool-calls.js";

/** `POST /tools/{toolName}`: the ElevenLabs server-tool webhook. */
export const makeHandler = (deps: Dependencies & { dispatcher: TaskDispatcher }) =>
  createHttpHandler("call-tool", deps, async (request) =>
    respond(
      await callTool(
        {
          ...deps,
          publicBaseUrl: deps.config.publicBaseUrl,
          exposeCallbackInToolResponse: deps.config.exposeCallbackInToolResponse,
        },
        request,
      ),
      deps.logger,
      deps.metrics,
    ),
  );

const deps = createDependencies(process.env, {}, ["tables", "publicBaseUrl"]);
export const handler = makeHandler({ ...deps, dispatcher: createDispatcher(deps.config, deps.logger) });
