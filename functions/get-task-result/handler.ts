import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { respond } from "../core/outcomes.js";
import { getTaskResults } from "../core/tool-calls.js";

/** `POST /tools/get_task_result`: the agent polls its task results while the session is active. */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("get-task-result", deps, async (request) =>
    respond(await getTaskResults(deps, request), deps.logger, deps.metrics),
  );

export const handler = makeHandler(createDependencies());
