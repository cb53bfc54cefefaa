import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findFreePort } from "../../local/dynamodb-local.js";
import { LOCAL_SECRETS } from "../../local/local-env.js";
import { signature, transcriptionEvent } from "../support/post-call-fixtures.js";
import { rawRequest } from "../support/raw-http.js";
import { type SpawnedServer, spawnLocalServer, timeLimitForStarts } from "../support/spawn-local-server.js";

// Issue 19, reproduction 7: the local server as trustworthy as API Gateway. Each test here failed
// before: log lines tagged with another request's route, empty bodies for protocol errors, a
// signature failing over invalid UTF-8, and a dead DynamoDB Local reported as ok.

const APP = { authorization: `Bearer ${LOCAL_SECRETS.SERVICE_TOKEN}`, "content-type": "application/json" };

/** Parses the JSON log lines a process wrote. */
const jsonLines = (output: string): Record<string, unknown>[] =>
  output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** Sends bytes as they are (what an HTTP client library refuses to send) and reads the answer. */
const sendBytes = (url: string, bytes: Buffer): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(url).port), "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.on("error", reject);
    socket.write(bytes);
  });

const statusAndBody = (answer: string) => {
  const [head = "", body = ""] = answer.split("\r\n\r\n");
  return { status: Number(head.split(" ")[1]), head, body };
};

describe("the local server under hostile HTTP, concurrency and a dying DynamoDB Local", () => {
  let service: SpawnedServer;

  beforeAll(async () => {
    service = await spawnLocalServer({
      args: ["--port", String(await findFreePort()), "--in-memory"],
      env: { POWERTOOLS_LOG_LEVEL: "DEBUG" },
    });
  }, timeLimitForStarts(1));
  afterAll(async () => {
    await service?.stop();
  }, timeLimitForStarts(1));

  it("tags every log line with its own request's route and requestId under concurrency", async () => {
    const ids = Array.from({ length: 30 }, () => `log-${randomUUID()}`);
    for (const id of ids.slice(0, 15))
      await fetch(`${service.url}/conversations/${id}/session`, { method: "POST", headers: APP, body: "{}" });
    // Registrations and reads interleaved, all in flight at once.
    await Promise.all(
      ids.flatMap((id, i) => [
        fetch(`${service.url}/conversations/${id}/session`, { method: "POST", headers: APP, body: "{}" }),
        fetch(`${service.url}/conversations/${ids[(i + 7) % ids.length]}/session`, { headers: APP }),
      ]),
    );
    const lines = jsonLines(service.stdout()).filter((l) => ids.includes(String(l.conversationId)));
    const registered = lines.filter((l) => l.message === "Session registered");
    const reads = lines.filter((l) => String(l.message).startsWith("Session read"));
    expect(registered.length).toBeGreaterThanOrEqual(30);
    expect(reads.length).toBeGreaterThanOrEqual(30);
    expect(registered.filter((l) => l.route !== "register-session")).toEqual([]);
    expect(reads.filter((l) => l.route !== "get-session")).toEqual([]);
    const requestIds = [...registered, ...reads].map((l) => l.requestId);
    expect(new Set(requestIds).size).toBe(requestIds.length);
  });

  it.each([
    [
      "headers larger than the server accepts",
      Buffer.from(`GET /health HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`),
      431,
      "headers_too_large",
    ],
    [
      "a control byte in the path",
      Buffer.from("GET /conversations/\x01x HTTP/1.1\r\nhost: x\r\n\r\n"),
      400,
      "bad_request",
    ],
    [
      "a bad byte in a header name",
      Buffer.from("GET /health HTTP/1.1\r\nhost: x\r\nx(y: 1\r\n\r\n"),
      400,
      "bad_request",
    ],
    [
      "a control byte in a header value",
      Buffer.concat([
        Buffer.from("GET /health HTTP/1.1\r\nhost: x\r\nx-a: a"),
        Buffer.from([0x01]),
        Buffer.from("\r\n\r\n"),
      ]),
      400,
      "bad_request",
    ],
  ])("answers %s with the JSON error shape", async (_label, bytes, status, code) => {
    const answer = statusAndBody(await sendBytes(service.url, bytes));
    expect(answer.status).toBe(status);
    expect(answer.head.toLowerCase()).toContain("content-type: application/json");
    expect(JSON.parse(answer.body)).toEqual({ error: code, message: expect.any(String) });
  });

  it("verifies a signed post-call webhook over the exact bytes, even when they are not valid UTF-8", async () => {
    const conversationId = `utf-${randomUUID()}`;
    const now = Math.floor(Date.now() / 1000);
    const json = JSON.stringify(transcriptionEvent(conversationId, { startSecs: now - 60 }));
    // A lone 0xFF byte inside a string: invalid UTF-8 that a decode-then-verify adapter would change.
    const at = json.indexOf('"message":"') + '"message":"'.length;
    const body = Buffer.concat([
      Buffer.from(json.slice(0, at)),
      Buffer.from([0xff]),
      Buffer.from(json.slice(at)),
    ]);
    const response = await rawRequest(service.url, {
      method: "POST",
      path: "/webhooks/elevenlabs/post-call",
      headers: {
        "content-type": "application/json",
        "elevenlabs-signature": signature(body, now, LOCAL_SECRETS.WEBHOOK_SECRET),
      },
      body,
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ status: "stored" });
  });

  it("reports DynamoDB Local's death on /health and in one log line, restarts it and serves again", async () => {
    const healthy = await fetch(`${service.url}/health`);
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toMatchObject({ status: "ok", dynamodbState: "up" });
    const pid = service.dynamoPid as number;
    process.kill(pid, "SIGKILL");
    // Until it is back: 503 naming the problem on /health.
    let back: Record<string, unknown> = {};
    for (let i = 0; i < 600; i++) {
      const health = await fetch(`${service.url}/health`);
      back = (await health.json()) as Record<string, unknown>;
      if (health.status === 503) {
        expect(back).toMatchObject({
          status: "degraded",
          problem: expect.stringContaining("DynamoDB Local"),
        });
      }
      if (health.status === 200 && back.dynamodbRestarts === 1) break;
      await sleep(100);
    }
    expect(back).toMatchObject({ status: "ok", dynamodbState: "up", dynamodbRestarts: 1 });
    const deaths = jsonLines(service.stderr()).filter(
      (l) => l.message === "DynamoDB Local exited; restarting it on the same data directory",
    );
    expect(deaths).toEqual([expect.objectContaining({ level: "ERROR", pid, signal: "SIGKILL" })]);
    // Served again: a freshly started JVM can still be slow for its first requests (503 + Retry-After).
    const id = `after-${randomUUID()}`;
    let registered = new Response(null, { status: 599 });
    for (let attempt = 0; attempt < 10; attempt++) {
      registered = await fetch(`${service.url}/conversations/${id}/session`, {
        method: "POST",
        headers: APP,
        body: "{}",
      });
      if (registered.status !== 503) break;
      await sleep(1000);
    }
    expect(registered.status).toBe(201);
  }, 120_000);
});
