import type { IncomingMessage, ServerResponse } from "node:http";
import { exampleTools, MAX_SLEEP_SECONDS } from "../examples/runner/tools.js";
import { logger } from "../functions/core/powertools.js";
import { defineTools, type TaskRunner } from "../functions/runner/index.js";
import { readBody, sendJson } from "./api-gateway-event.js";

// `npm start` runs the example task runner in this process. The tool route dispatches through
// its usual port (the HTTP dispatcher, RUNNER_URL), here pointed at a path of the local server
// itself; the message is then run by the runner library's `runTask`, the code the Lambda runner
// runs per SQS record: parse and check the message, run the tool, POST the callback with retries.

/** Where the local server takes task messages for its in-process runner (not a route in AWS). */
export const LOCAL_RUNNER_PATH = "/_local/runner/tasks";

/** The largest task message accepted (SQS's own limit). */
const MAX_MESSAGE_BYTES = 256 * 1024;

export interface LocalRunner {
  readonly toolNames: readonly string[];
  /** Serves `POST {@link LOCAL_RUNNER_PATH}`: 202 at once, the task runs in the background. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Tasks still running (a `sleep` outliving a session, a callback being retried). */
  inFlight(): number;
}

/** The example runner (lookup_order, sleep) with callbacks to `publicBaseUrl` only. */
export const createLocalRunner = (
  publicBaseUrl: string,
  runner: TaskRunner = defineTools(exampleTools, {
    publicBaseUrl,
    taskTimeoutMs: (MAX_SLEEP_SECONDS + 5) * 1000,
  }),
): LocalRunner => {
  let running = 0;
  return {
    toolNames: runner.toolNames,
    inFlight: () => running,
    async handle(req, res) {
      const body = await readBody(req, MAX_MESSAGE_BYTES);
      if (body === "too_large")
        return sendJson(res, 413, { error: "payload_too_large", message: "Task message too large." });
      running++;
      // The dispatcher waits for this answer only: the task itself runs after it, as with SQS.
      sendJson(res, 202, { status: "queued" });
      try {
        await runner.runTask(body.toString("utf8"));
      } catch (error) {
        // runTask does not log a message it refused or a result it could not deliver (the Lambda
        // handler does): the error's class and own sentence never carry the token or the result.
        logger.warn("Local runner gave up on a task; SQS would deliver it again in AWS", {
          errorName: error instanceof Error ? error.name : "Error",
          error: error instanceof Error ? error.message : "non-Error thrown",
        });
      } finally {
        running--;
      }
    },
  };
};
