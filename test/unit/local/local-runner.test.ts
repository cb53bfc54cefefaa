import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { TaskRunner } from "../../../functions/runner/index.js";
import { InvalidTaskMessageError } from "../../../functions/runner/index.js";
import { createLocalRunner, LOCAL_RUNNER_PATH } from "../../../local/local-runner.js";
import { taskMessage } from "../../support/task-messages.js";

/**
 * npm start's in-process runner: the dispatcher's POST is answered 202 at once, and the message
 * goes to the runner library's runTask as SQS would carry it.
 */
const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise<void>((done) => server.close(() => done()));
});

const serve = async (runTask: TaskRunner["runTask"]) => {
  const runner = createLocalRunner("http://127.0.0.1:1", {
    handler: async () => ({ batchItemFailures: [] }),
    runTask,
    toolNames: ["lookup_order"],
  });
  /** Each request's whole handling, the task included: awaited instead of polling with a timeout. */
  const handled: Promise<void>[] = [];
  const server = createServer((req, res) => void handled.push(runner.handle(req, res)));
  servers.push(server);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${LOCAL_RUNNER_PATH}`;
  return { runner, url, handled };
};

describe("the local in-process runner", () => {
  it("answers 202 before the task runs, then hands runTask the message as sent", async () => {
    let called: () => void = () => undefined;
    const calledOnce = new Promise<void>((done) => {
      called = done;
    });
    let finish: () => void = () => undefined;
    const runTask = vi.fn(
      () =>
        new Promise<never>((_, fail) => {
          called();
          finish = () => fail(new InvalidTaskMessageError("Task message is not JSON."));
        }),
    );
    const { runner, url, handled } = await serve(runTask);
    const body = JSON.stringify(taskMessage());

    const response = await fetch(url, { method: "POST", body });

    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ status: "queued" });
    await calledOnce;
    expect(runTask).toHaveBeenCalledWith(body);
    expect(runner.inFlight()).toBe(1);
    finish();
    // A refused message ends the task (a WARN line), never the server.
    await Promise.all(handled);
    expect(runner.inFlight()).toBe(0);
  });

  it("refuses a message larger than SQS would carry, without running it", async () => {
    const runTask = vi.fn();
    const { url } = await serve(runTask);
    const response = await fetch(url, { method: "POST", body: "x".repeat(256 * 1024 + 1) });
    expect(response.status).toBe(413);
    expect(runTask).not.toHaveBeenCalled();
  });
});
