import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { getTaskResults } from "../core/tool-api.js";

/** `POST /tools/get_task_result`: the agent polls its task results while the session is active. */
export const makeHandler = (deps: Dependencies) =>
  createHttpHandler("get-task-result", deps, (request) => getTaskResults(deps, request));

export const handler = makeHandler(createDependencies());
