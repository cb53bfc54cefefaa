import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findFreePort } from "../../local/dynamodb-local.js";
import { type SpawnedServer, spawnLocalServer, timeLimitForStarts } from "../support/spawn-local-server.js";

/**
 * The README is what a new developer follows: its quick start must stay two commands that CI
 * runs verbatim, and its curl walkthrough must work against a freshly started service.
 */
const ROOT = resolve(import.meta.dirname, "../..");
const readme = readFileSync(resolve(ROOT, "README.md"), "utf8");

/** The body of the first fenced block after `heading` (or between two markers). */
const fencedBlockAfter = (marker: string): string => {
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README has no ${marker}`);
  const block = /```[a-z]*\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block?.[1]) throw new Error(`README has no code block after ${marker}`);
  return block[1];
};

describe("README quick start", () => {
  const commands = fencedBlockAfter("## Quick start")
    .split("\n")
    .filter((line) => line.trim() !== "");

  it("is exactly two commands: install-and-run, then test", () => {
    expect(commands).toHaveLength(2);
    expect(commands[0]).toMatch(/^npm ci && npm start\s/);
    expect(commands[1]).toMatch(/^npm test\s/);
  });

  it("gives the test command CI runs, character for character", () => {
    const ci = readFileSync(resolve(ROOT, ".ci/run"), "utf8").trimEnd().split("\n");
    expect(ci.at(-1)).toBe(commands[1]);
  });
});

describe("README curl walkthrough against a fresh service", () => {
  let service: SpawnedServer;
  /** 5-second sessions on the first service's DynamoDB Local, for the late-callback block. */
  let shortSessions: SpawnedServer;
  let upstream: Server;
  const upstreamKeys: string[] = [];

  beforeAll(async () => {
    // ElevenLabs stand-in: rejects the local placeholder key as the real API would.
    upstream = createServer((req, res) => {
      upstreamKeys.push(String(req.headers["xi-api-key"]));
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ detail: { status: "invalid_api_key" } }));
    });
    await new Promise<void>((ready) => upstream.listen(0, "127.0.0.1", ready));
    service = await spawnLocalServer({
      args: ["--port", String(await findFreePort()), "--in-memory", "--quiet"],
      env: {
        ELEVENLABS_API_BASE_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      },
    });
    const endpoint = /DynamoDB Local\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(service.stdout())?.[1];
    if (!endpoint) throw new Error(`no DynamoDB Local endpoint in the banner:\n${service.stdout()}`);
    shortSessions = await spawnLocalServer({
      args: ["--port", String(await findFreePort()), "--dynamodb-endpoint", endpoint, "--quiet"],
      env: {
        SESSION_TTL_MS: "5000",
        RUNNER_URL: "",
        EXPOSE_CALLBACK_IN_TOOL_RESPONSE: "",
        TOOL_INLINE_WAIT_MS: "",
      },
    });
  }, timeLimitForStarts(2));
  afterAll(async () => {
    // The service on the shared endpoint first, then the one that owns DynamoDB Local.
    await shortSessions?.stop();
    await service?.stop();
    upstream?.close();
  });

  it("runs as written, and each call answers what its comment says", async () => {
    const walkthrough = fencedBlockAfter("<!-- readme-curl:start -->");
    const errors = fencedBlockAfter("Error answers are JSON");
    // Asynchronously: the ElevenLabs stand-in lives in this process and must keep answering.
    const run = await promisify(execFile)("bash", ["-euo", "pipefail", "-c", `${walkthrough}\n${errors}`], {
      env: { ...process.env, BASE: service.url },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(run.stderr).toBe("");
    const answers = run.stdout
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const [
      health,
      registered,
      session,
      accepted,
      polled,
      webhook,
      list,
      history,
      signedUrl,
      notFound,
      noSecret,
      badJson,
    ] = answers;
    expect(answers).toHaveLength(12);
    expect(health).toMatchObject({ status: "ok", sessionTtlMs: 600_000 });
    const id = String(registered?.conversationId);
    expect(id).toMatch(/^conv-\d+$/);
    expect(registered).toMatchObject({ ttlSeconds: 600, agentId: "agent_demo" });
    expect(session).toMatchObject({ status: "active", conversationId: id });
    // npm start's in-process runner did the task: the answer has no callback; it has the result
    // inline when the runner beat TOOL_INLINE_WAIT_MS (it nearly always does), and the poll has it.
    expect(accepted).toMatchObject({ taskId: expect.any(String) });
    expect(["completed", "accepted"]).toContain(accepted?.status);
    expect(accepted).not.toHaveProperty("callbackToken");
    expect(accepted).not.toHaveProperty("callbackUrl");
    expect(polled).toMatchObject({
      status: "active",
      tasks: [
        {
          taskId: accepted?.taskId,
          status: "completed",
          toolName: "lookup_order",
          result: { status: "succeeded", result: { orderId: "A-1001", currency: "EUR" } },
        },
      ],
    });
    expect(webhook).toMatchObject({
      status: "stored",
      eventType: "post_call_transcription",
      conversationId: id,
    });
    expect(list?.conversations).toEqual(
      expect.arrayContaining([expect.objectContaining({ conversationId: id })]),
    );
    expect(history).toMatchObject({
      meta: { conversationId: id, call: { summary: "Order status given.", transcriptLines: 2 } },
      tasks: [{ toolName: "lookup_order", outcome: "delivered" }],
    });
    expect(JSON.stringify(history?.messages)).toContain("Where is order A-1001?");
    expect(signedUrl).toMatchObject({ error: "upstream_auth_failed" });
    expect(upstreamKeys).toEqual(["local-elevenlabs-api-key"]);
    expect(notFound).toMatchObject({ error: "session_not_found" });
    expect(noSecret).toMatchObject({ error: "unauthorized" });
    expect(badJson).toMatchObject({ error: "invalid_json" });
    // npm start prints readable lines, not a CloudWatch EMF blob after every request.
    expect(service.stdout()).not.toContain('"_aws"');
  });

  it("shows a late callback by hand: a sleep outliving a 5 s session is kept as session_expired", async () => {
    // The walkthrough's variables (its first lines, up to the first blank one), then the block.
    const setup = fencedBlockAfter("<!-- readme-curl:start -->").split("\n\n")[0];
    const late = fencedBlockAfter("<!-- readme-late-callback:start -->");
    const run = await promisify(execFile)("bash", ["-euo", "pipefail", "-c", `${setup}\n${late}`], {
      env: { ...process.env, BASE: shortSessions.url },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(run.stderr).toBe("");
    const [registered, accepted, history] = run.stdout
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(registered).toMatchObject({ ttlSeconds: 5 });
    expect(accepted).toMatchObject({ status: "accepted", taskId: expect.any(String) });
    expect(accepted).not.toHaveProperty("callbackToken");
    expect(history?.tasks).toEqual([
      expect.objectContaining({
        taskId: accepted?.taskId,
        toolName: "sleep",
        status: "completed",
        outcome: "session_expired",
        result: { status: "succeeded", result: { slept: 6 } },
      }),
    ]);
    expect(`${shortSessions.stdout()}\n${shortSessions.stderr()}`).toContain(
      "Callback arrived after session expired",
    );
  });
});
