import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openApiDocument } from "../../functions/core/openapi.js";
import { findFreePort } from "../../local/dynamodb-local.js";
import { type SpawnedServer, spawnLocalServer } from "../support/spawn-local-server.js";

const ROOT = resolve(import.meta.dirname, "../..");

interface Run {
  readonly code: number | null;
  readonly lines: string[];
}

/** The README's command, `npm run smoke`, from the repository root, in its own process group. */
const runSmokeCommand = (
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<Run> =>
  new Promise((done, fail) => {
    const child = spawn("npm", ["run", "smoke", "--silent", "--", ...args], {
      cwd: ROOT,
      env: { ...process.env, SERVICE_TOKEN: "", TOOL_SECRET: "", WEBHOOK_SECRET: "", ...env },
      detached: true,
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      fail(new Error(`npm run smoke did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once("error", fail);
    child.once("close", (code) => {
      clearTimeout(timer);
      done({ code, lines: output.split("\n").filter((l) => l.trim() !== "") });
    });
  });

/**
 * `npm run smoke` against `npm start`. The service runs with its own tool secret: the smoke test
 * given that secret passes; given the local default (a wrong secret for this service) it fails.
 */
describe("npm run smoke", () => {
  let server: SpawnedServer;
  const TOOL_SECRET = "e2e-smoke-tool-secret";

  beforeAll(async () => {
    server = await spawnLocalServer({
      launcher: "npm",
      args: ["--port", String(await findFreePort()), "--in-memory", "--quiet", "--no-runner"],
      env: { TOOL_SECRET, RUNNER_URL: "", EXPOSE_CALLBACK_IN_TOOL_RESPONSE: "", SESSION_TTL_MS: "" },
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("passes every step against npm start, one line per step, and says the test data stays without erasure", async () => {
    const run = await runSmokeCommand(["--url", server.url], { TOOL_SECRET });

    expect(run.code, run.lines.join("\n")).toBe(0);
    const steps = run.lines.filter((l) => /^[✓✗] +\d+ /.test(l));
    expect(steps.map((l) => l.slice(0, 2))).toEqual(Array(9).fill("✓ "));
    expect(steps.map((l) => /^✓ +\d+ (.+?)\s{2,}/.exec(l)?.[1])).toEqual([
      "register session",
      "read session",
      "tool call",
      "task callback",
      "agent reads result",
      "unsigned webhook",
      "signed webhook",
      "read history",
      "remove test data",
    ]);
    expect(steps[8]).toMatch(/200 .*conversation, tasks and session removed/);
    expect(run.lines.at(-1)).toMatch(/^✓ Smoke test passed in [\d.]+ s: 9 steps\.$/);
  });

  it("fails with exit 1 and one clear line at the first step a wrong secret breaks", async () => {
    const run = await runSmokeCommand(["--url", server.url], {});

    expect(run.code).toBe(1);
    const failures = run.lines.filter((l) => l.startsWith("✗"));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/✗ +3 tool call .*HTTP 401 unauthorized: .*X-Tool-Secret/);
    expect(run.lines.at(-1)).toBe(failures[0]);
    expect(run.lines.join("\n")).not.toContain(TOOL_SECRET);
  });

  it("serves its OpenAPI document at GET /openapi.json, naming itself as the server", async () => {
    const response = await fetch(`${server.url}/openapi.json`);

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(openApiDocument(server.url));
  });

  it("fails with one line when nothing listens at --url", async () => {
    const run = await runSmokeCommand(["--url", `http://127.0.0.1:${await findFreePort()}`], {});

    expect(run.code).toBe(1);
    expect(run.lines.at(-1)).toMatch(/✗ +1 register session .*ECONNREFUSED/);
  });
});
