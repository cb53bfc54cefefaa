import {
  DELETE_CONVERSATION,
  GET_CONVERSATION,
  GET_SIGNED_URL,
  LIST_CONVERSATIONS,
} from "./history-routes.js";
import {
  CALL_TOOL,
  GET_SESSION,
  GET_TASK_RESULT,
  RECORD_TASK_RESULT,
  REGISTER_SESSION,
} from "./live-routes.js";
import { BROKEN_ENCODING, UNKNOWN_PATHS, WRONG_METHODS } from "./methods.js";
import type { CorpusCase } from "./types.js";
import { UNSTORABLE_JSON } from "./unstorable.js";
import { POST_CALL_WEBHOOK } from "./webhook.js";

export type { CorpusCase } from "./types.js";

/** Every bad request, by route. */
export const CORPUS: Readonly<Record<string, readonly CorpusCase[]>> = {
  "register-session": REGISTER_SESSION,
  "get-session": GET_SESSION,
  "call-tool": CALL_TOOL,
  "get-task-result": GET_TASK_RESULT,
  "record-task-result": RECORD_TASK_RESULT,
  "post-call-webhook": POST_CALL_WEBHOOK,
  "get-signed-url": GET_SIGNED_URL,
  "list-conversations": LIST_CONVERSATIONS,
  "get-conversation": GET_CONVERSATION,
  "delete-conversation": DELETE_CONVERSATION,
  "wrong methods": WRONG_METHODS,
  "unknown paths": UNKNOWN_PATHS,
  "broken percent-encoding": BROKEN_ENCODING,
  "un-storable JSON": UNSTORABLE_JSON,
};

export const ALL_CASES: readonly CorpusCase[] = Object.values(CORPUS).flat();
