import { describe, expect, it } from "vitest";
import type { Config } from "../../../functions/core/config.js";
import { createDispatcher, sqsSender } from "../../../functions/core/task-queue.js";

const logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
const config = (extra: Partial<Config>) => extra as Config;

describe("task queue dispatch", () => {
  it("hands each message to the SQS sender with its queue URL, and fails when the send fails", async () => {
    const sent: [string, string][] = [];
    const sender = sqsSender(async (queueUrl, body) => {
      sent.push([queueUrl, body]);
      return "m-1";
    });
    await sender.sendMessage("https://sqs.eu-west-1.amazonaws.com/1/tasks", '{"taskId":"t1"}', "c1");
    expect(sent).toEqual([["https://sqs.eu-west-1.amazonaws.com/1/tasks", '{"taskId":"t1"}']]);
    const failing = sqsSender(async () => {
      throw new Error("unreachable");
    });
    await expect(failing.sendMessage("https://sqs.example/q", "{}", "c1")).rejects.toThrow("unreachable");
  });

  it("picks SQS in AWS, the HTTP runner locally, and otherwise none", () => {
    expect(
      createDispatcher(config({ taskQueueUrl: "https://sqs.example/q", runnerUrl: "http://r" }), logger).kind,
    ).toBe("sqs");
    expect(createDispatcher(config({ runnerUrl: "http://127.0.0.1:1/run" }), logger).kind).toBe("http");
    expect(createDispatcher(config({}), logger).kind).toBe("none");
  });
});
