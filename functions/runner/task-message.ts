import * as z from "zod/mini";
import type { TaskMessage } from "../core/dispatcher.js";
import { ID_PATTERN } from "../core/ids.js";
import { formatIssues } from "../core/validation.js";

/**
 * A task message this runner cannot act on: unparseable, missing fields, or a callback URL that is
 * not this service's. Thrown so the message is retried by SQS and then dead-lettered, never run.
 * The message names fields only, never their values (the token travels in the message).
 */
export class InvalidTaskMessageError extends Error {
  override readonly name = "InvalidTaskMessageError";
}

const id = z.string().check(z.regex(ID_PATTERN));

// Loose: a newer service may add fields; an older runner must still run the task.
const taskMessageSchema = z.looseObject({
  taskId: id,
  conversationId: id,
  toolName: id,
  params: z.record(z.string(), z.unknown()),
  callbackUrl: z.string().check(z.minLength(1), z.maxLength(2048)),
  callbackToken: z.string().check(z.minLength(16), z.maxLength(512)),
  createdAt: z.string().check(z.minLength(1), z.maxLength(64)),
});

/** `https://api.example.com/` → `https://api.example.com`; throws unless an http(s) URL without query. */
export const normalizeBaseUrl = (baseUrl: string): string => {
  const trimmed = baseUrl.trim().replace(/\/+$/, "");
  if (!/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(trimmed)) {
    throw new Error("The runner's service base URL must be an http(s) URL without query or fragment.");
  }
  return trimmed;
};

/** The only callback URL a task of this service can have (see `callTool` in `functions/core/tool-calls.ts`). */
export const expectedCallbackUrl = (baseUrl: string, conversationId: string, taskId: string): string =>
  `${baseUrl}/conversations/${conversationId}/tasks/${taskId}/result`;

/**
 * Parses an SQS message body (or an already-parsed object, in process) into a task message.
 * The callback URL must be exactly this service's result URL for the task's own ids: the runner
 * sends the task's bearer token there, so any other URL (another host, another task) is refused.
 */
export const parseTaskMessage = (input: unknown, baseUrl: string): TaskMessage => {
  let value = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch {
      throw new InvalidTaskMessageError("Task message is not JSON.");
    }
  }
  const parsed = taskMessageSchema.safeParse(value);
  if (!parsed.success) {
    throw new InvalidTaskMessageError(
      `Task message is invalid: ${formatIssues(parsed.error.issues, "message").join("; ")}.`,
    );
  }
  const message = parsed.data;
  if (message.callbackUrl !== expectedCallbackUrl(baseUrl, message.conversationId, message.taskId)) {
    throw new InvalidTaskMessageError(
      "Task message refused: its callbackUrl is not this service's result URL for the task.",
    );
  }
  return {
    taskId: message.taskId,
    conversationId: message.conversationId,
    toolName: message.toolName,
    // The record schema copies keys by assignment, which turns an own `__proto__` key (legal JSON,
    // and an LLM may send it) into a prototype change and drops it; the tool gets the params it was sent.
    params: (value as { params: Record<string, unknown> }).params,
    callbackUrl: message.callbackUrl,
    callbackToken: message.callbackToken,
    createdAt: message.createdAt,
  };
};
