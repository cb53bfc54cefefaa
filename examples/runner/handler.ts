import { defineTools } from "../../functions/runner/index.js";
import { exampleTools, MAX_SLEEP_SECONDS } from "./tools.js";

/**
 * The example task runner on Lambda (deployed by default; `-c exampleRunner=false` leaves it out).
 * A tool may run as long as the longest `sleep`; the construct's timeout leaves room for the callback.
 */
export const handler = defineTools(exampleTools, { taskTimeoutMs: (MAX_SLEEP_SECONDS + 5) * 1000 }).handler;
