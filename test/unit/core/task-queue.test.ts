import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SQSClient } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { SQS_CLIENT_SETTINGS, sqsSender } from "../../../functions/core/task-queue.js";

describe("SQS client settings (task dispatch and parking)", () => {
  it("are deliberate: 3 attempts, 1 s to connect, 2 s per attempt that really aborts", () => {
    expect(SQS_CLIENT_SETTINGS).toEqual({
      maxAttempts: 3,
      retryMode: "standard",
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
    });
    const { maxAttempts, requestHandler } = SQS_CLIENT_SETTINGS;
    // Worst case (every attempt hangs, plus standard backoff) stays inside the 10 s Lambda timeout.
    expect(maxAttempts * requestHandler.requestTimeout + 100 * 2 + 100 * 4).toBeLessThan(10_000);
  });

  it("make a send to a queue endpoint that never answers fail instead of hanging", async () => {
    const hung = createServer(() => undefined);
    await new Promise<void>((ready) => hung.listen(0, "127.0.0.1", ready));
    const { port } = hung.address() as AddressInfo;
    try {
      const client = new SQSClient({
        ...SQS_CLIENT_SETTINGS,
        maxAttempts: 1,
        endpoint: `http://127.0.0.1:${port}`,
        region: "us-east-1",
        credentials: { accessKeyId: "x", secretAccessKey: "x" },
      });
      await expect(sqsSender(client).sendMessage(`http://127.0.0.1:${port}/q`, "{}", "g")).rejects.toThrow();
    } finally {
      hung.closeAllConnections();
      hung.close();
    }
  }, 15_000);
});
