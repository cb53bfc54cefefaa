import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backoffMs, DEFAULT_CALLBACK_POLICY, retryAfterMs } from "../../../functions/runner/callback.js";
import {
  expectedCallbackUrl,
  InvalidTaskMessageError,
  parseTaskMessage,
} from "../../../functions/runner/task-message.js";
import { RUNNER_BASE_URL, TASK_TOKEN, taskMessage } from "../../support/task-messages.js";

const id = fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/);

describe("parseTaskMessage (properties)", () => {
  it("accepts every well-formed message whose callback URL is this service's, and returns it unchanged", () => {
    fc.assert(
      fc.property(
        id,
        id,
        id,
        fc.dictionary(fc.string(), fc.jsonValue()),
        (taskId, conversationId, toolName, params) => {
          const message = taskMessage({ taskId, conversationId, toolName, params });
          expect(parseTaskMessage(JSON.stringify(message), RUNNER_BASE_URL)).toEqual(
            JSON.parse(JSON.stringify(message)),
          );
        },
      ),
    );
  });

  it("keeps a params key named __proto__ as a key (found by the property above on CI)", () => {
    const body = JSON.stringify(
      taskMessage({ taskId: "0", conversationId: "-", toolName: "-", params: {} }),
    ).replace('"params":{}', '"params":{"__proto__":[],"a":1}');
    const parsed = parseTaskMessage(body, RUNNER_BASE_URL);
    expect(Object.keys(parsed.params)).toEqual(["__proto__", "a"]);
    expect(Object.getPrototypeOf(parsed.params)).toBe(Object.prototype);
  });

  it("throws only InvalidTaskMessageError for any input, and never echoes the token", () => {
    const anyMessage = fc.oneof(
      fc.string(),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.record(
        {
          taskId: fc.oneof(id, fc.string(), fc.integer()),
          conversationId: fc.oneof(id, fc.string()),
          toolName: fc.oneof(id, fc.string(), fc.constant(null)),
          params: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue()),
          callbackUrl: fc.oneof(fc.webUrl(), fc.string()),
          callbackToken: fc.constant(TASK_TOKEN),
          createdAt: fc.string(),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(anyMessage, (input) => {
        try {
          const message = parseTaskMessage(input, RUNNER_BASE_URL);
          // Whatever passes names this service's result URL for its own ids.
          expect(message.callbackUrl).toBe(
            expectedCallbackUrl(RUNNER_BASE_URL, message.conversationId, message.taskId),
          );
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidTaskMessageError);
          expect((error as Error).message).not.toContain(TASK_TOKEN);
        }
      }),
    );
  });

  it("refuses any callback URL that differs from the expected one", () => {
    fc.assert(
      fc.property(fc.webUrl({ withQueryParameters: true, withFragments: true }), (callbackUrl) => {
        fc.pre(callbackUrl !== expectedCallbackUrl(RUNNER_BASE_URL, "conv_1", "task-1"));
        expect(() => parseTaskMessage(taskMessage({ callbackUrl }), RUNNER_BASE_URL)).toThrow(
          InvalidTaskMessageError,
        );
      }),
    );
  });
});

describe("retry timing (properties)", () => {
  it("keeps every backoff within [ceiling/2, ceiling] of the capped exponential", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const ceiling = Math.min(
            DEFAULT_CALLBACK_POLICY.maxDelayMs,
            DEFAULT_CALLBACK_POLICY.baseDelayMs * 2 ** (attempt - 1),
          );
          const delay = backoffMs(DEFAULT_CALLBACK_POLICY, attempt, r);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
          expect(delay).toBeLessThanOrEqual(ceiling);
        },
      ),
    );
  });

  it("reads any Retry-After as undefined or a wait of zero or more ms", () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 0, max: 4_000_000_000_000 }), (header, now) => {
        const wait = retryAfterMs(header, now);
        if (wait !== undefined) expect(wait).toBeGreaterThanOrEqual(0);
      }),
    );
  });
});
