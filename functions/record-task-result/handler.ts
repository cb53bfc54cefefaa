import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { httpNotifier, type Notifier } from "../core/notifier.js";
import { recordTaskResult } from "../core/task-result-api.js";

/** `POST /conversations/{conversationId}/tasks/{taskId}/result`: the task runner's callback. */
export const makeHandler = (deps: Dependencies & { notifier: Notifier }) =>
  createHttpHandler("record-task-result", deps, (request) => recordTaskResult(deps, request));

const deps = createDependencies();
export const handler = makeHandler({
  ...deps,
  notifier: httpNotifier(() => deps.secrets.get("notifySigningSecret"), deps.config.notifyTimeoutMs),
});
