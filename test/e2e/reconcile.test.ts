import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_SECRETS } from "../../local/local-env.js";
import { type FakeConversationsApi, startFakeConversationsApi } from "../support/fake-conversations-api.js";
import { transcriptionEvent } from "../support/post-call-fixtures.js";
import { type SpawnedServer, spawnLocalServer } from "../support/spawn-local-server.js";

const ROOT = resolve(import.meta.dirname, "../..");
const serviceAuth = {
  authorization: `Bearer ${LOCAL_SECRETS.SERVICE_TOKEN}`,
  "content-type": "application/json",
};

/** `npm run reconcile -- <args>` as a developer runs it, with a developer's environment. */
const runReconcile = (args: string[], env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    for (const name of ["SESSIONS_TABLE", "CONVERSATIONS_TABLE", "POWERTOOLS_LOG_LEVEL", "PUBLIC_BASE_URL"])
      delete childEnv[name];
    const child = spawn("npm", ["run", "--silent", "reconcile", "--", ...args], { cwd: ROOT, env: childEnv });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.on("close", (code) => done({ code, stdout, stderr }));
  });

describe("reconciliation against a spawned npm start and a fake ElevenLabs API", () => {
  let fake: FakeConversationsApi;
  let dataDir: string;
  let service: SpawnedServer | undefined;
  beforeAll(async () => {
    fake = await startFakeConversationsApi(LOCAL_SECRETS.ELEVENLABS_API_KEY);
    dataDir = await mkdtemp(join(tmpdir(), "reconcile-e2e-"));
    service = await spawnLocalServer({
      // No pass of its own, so the passes below are the test's.
      args: ["--data-dir", dataDir, "--port", "0", "--quiet", "--no-reconcile"],
      env: { SESSION_TTL_MS: "1000", RECONCILE_AFTER_MS: "0", ELEVENLABS_API_BASE_URL: fake.url },
    });
  });
  afterAll(async () => {
    await service?.stop("SIGINT");
    await fake.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const register = async (conversationId: string, url = service?.url) => {
    const response = await fetch(`${url}/conversations/${conversationId}/session`, {
      method: "POST",
      headers: serviceAuth,
      body: JSON.stringify({ agentId: "agent_01jxyz" }),
    });
    expect(response.status).toBe(201);
  };

  it("npm run reconcile finds the running service by its data directory and stores what the webhook never brought", async () => {
    const lost = `conv-lost-${randomUUID().slice(0, 8)}`;
    const gone = `conv-gone-${randomUUID().slice(0, 8)}`;
    const busy = `conv-busy-${randomUUID().slice(0, 8)}`;
    for (const id of [lost, gone, busy]) await register(id);
    fake.answer(lost, { status: 200, body: transcriptionEvent(lost).data });
    fake.answer(busy, { status: 200, body: { ...transcriptionEvent(busy).data, status: "processing" } });
    await sleep(1200); // the 1 s sessions end; RECONCILE_AFTER_MS=0 makes them due at once

    const run = await runReconcile(["--data-dir", dataDir], { ELEVENLABS_API_BASE_URL: fake.url });
    expect(run.stderr).toBe("");
    const lines = run.stdout.trim().split("\n");
    expect(lines).toContainEqual(`stored            ${lost}  3 transcript lines and the analysis`);
    expect(lines).toContainEqual(`not_found         ${gone}`);
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^still_processing  ${busy}  processing, attempt 1, next try \\S+Z$`)),
    );
    expect(lines.at(-1)).toMatch(
      /^Reconciliation pass: 3 due, 3 handled \(.+\), 0 left for the next pass, oldest due \d+ s ago$/,
    );
    expect(run.code).toBe(0);

    const history = await fetch(`${service?.url}/conversations/${lost}`, { headers: serviceAuth });
    const body = (await history.json()) as { messages: { kind: string }[]; meta: Record<string, unknown> };
    expect(body.messages.map((m) => m.kind).sort()).toEqual([
      "call_analysis",
      "session_registered",
      "transcript",
      "transcript",
      "transcript",
    ]);
    expect(body.meta).toMatchObject({ status: "done", call: { callSuccessful: "success" } });

    // A second pass has nothing left to do for them: nothing is fetched twice.
    const again = await runReconcile(["--data-dir", dataDir], { ELEVENLABS_API_BASE_URL: fake.url });
    expect(again.stdout.trim()).toBe("Reconciliation pass: 0 due, 0 handled, 0 left for the next pass");
    expect(fake.requestsFor(lost)).toHaveLength(1);
    expect(fake.requestsFor(gone)).toHaveLength(1);
  });

  it("says in its banner that --no-reconcile turned the periodic pass off", () => {
    expect(service?.stdout()).toContain(
      "  reconciliation    off (--no-reconcile); npm run reconcile runs one pass\n",
    );
  });

  it("npm start runs a pass on its own schedule and prints what it reconciled", async () => {
    const own = await spawnLocalServer({
      args: ["--in-memory", "--port", "0", "--quiet"],
      env: {
        SESSION_TTL_MS: "1000",
        RECONCILE_AFTER_MS: "0",
        ELEVENLABS_API_BASE_URL: fake.url,
        LOCAL_RECONCILE_INTERVAL_MS: "1000",
      },
    });
    try {
      expect(own.stdout()).toContain(
        `  reconciliation    every 1 s: transcripts missing 0 ms (RECONCILE_AFTER_MS) after a session ends are fetched from ${fake.url} (--no-reconcile turns it off)\n`,
      );
      const conv = `conv-loop-${randomUUID().slice(0, 8)}`;
      fake.answer(conv, { status: 200, body: transcriptionEvent(conv).data });
      await register(conv, own.url);
      const line = `reconcile: stored            ${conv}  3 transcript lines and the analysis`;
      const summary = /reconcile: Reconciliation pass: 1 due, 1 handled \(1 stored\)/;
      // The pass prints its summary after its per-conversation lines: wait for both.
      const printed = () => own.stdout().includes(line) && summary.test(own.stdout());
      for (let waited = 0; !printed() && waited < 30_000; waited += 200) await sleep(200);
      expect(own.stdout()).toContain(line);
      expect(own.stdout()).toMatch(summary);
    } finally {
      const exit = await own.stop("SIGINT");
      expect(exit.stdout).toContain("Stopped. Nothing left running.");
    }
    // A second service start (Java and DynamoDB Local) takes most of a minute on a loaded machine.
  }, 240_000);

  it("says in one line when no service runs on the data directory", async () => {
    const empty = await mkdtemp(join(tmpdir(), "reconcile-none-"));
    try {
      const run = await runReconcile(["--data-dir", empty]);
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toBe(
        `npm run reconcile: No local service is running on ${empty}: start it with npm start (same --data-dir), or pass --dynamodb-endpoint <url> (an --in-memory service prints its endpoint in the banner).`,
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
