import { describe, expect, it } from "vitest";
import {
  requireBearer,
  requireToolSecret,
  SERVICE_TOKEN_HINT,
  TOOL_SECRET_HINT,
} from "../../../functions/core/auth.js";
import { ConfigError, loadConfig } from "../../../functions/core/config.js";
import { UnauthorizedError } from "../../../functions/core/errors.js";
import type { LocalServer } from "../../../local/local-service.js";
import { banner } from "../../../local/server.js";

const TABLES = { SESSIONS_TABLE: "s", CONVERSATIONS_TABLE: "c" };

const server = (
  url: string,
  sessionTtlMs: number,
  taskDispatch: LocalServer["taskDispatch"] = "in-process",
  extraEnv: Record<string, string> = {},
): LocalServer => ({
  url,
  sessionTtlMs,
  taskDispatch,
  env: { SERVICE_TOKEN: "t", TOOL_SECRET: "t", WEBHOOK_SECRET: "w", NOTIFY_SIGNING_SECRET: "n", ...extraEnv },
  dynamodb: { endpoint: "http://127.0.0.1:1", mode: "external", notices: [] },
  close: async () => {},
});

const thrown = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("did not throw");
};

describe("messages that say what to do", () => {
  it("a 401 names the header the route expects, never the expected value", () => {
    const service = thrown(() => requireBearer({ authorization: "Bearer nope" }, "the-real-token"));
    const tool = thrown(() => requireToolSecret({}, "the-real-secret"));

    expect(service).toBeInstanceOf(UnauthorizedError);
    expect((service as Error).message).toBe(SERVICE_TOKEN_HINT);
    expect((service as Error).message).toContain("Authorization: Bearer");
    expect((tool as Error).message).toBe(TOOL_SECRET_HINT);
    expect((tool as Error).message).toContain("X-Tool-Secret");
    expect(`${(service as Error).message}${(tool as Error).message}`).not.toMatch(/the-real/);
  });

  it.each([
    ["SESSION_TTL_MS", "abc", 'SESSION_TTL_MS must be a positive whole number of ms, not "abc"'],
    ["SESSION_TTL_MS", "-5", 'not "-5"'],
    ["NOTIFY_TIMEOUT_MS", "99999", 'NOTIFY_TIMEOUT_MS must be a whole number from 1 to 10000, not "99999"'],
    ["ELEVENLABS_API_BASE_URL", "api.elevenlabs.io", 'not "api.elevenlabs.io"'],
    ["PUBLIC_BASE_URL", "ftp://x", 'PUBLIC_BASE_URL must be an http(s) URL, not "ftp://x"'],
    [
      "TOOL_INLINE_WAIT_MS",
      "20000",
      'TOOL_INLINE_WAIT_MS must be a whole number of ms from 0 to 15000, not "20000"',
    ],
    ["TOOL_INLINE_WAIT_MS", "1.5s", 'not "1.5s"'],
    ["TOOL_INLINE_WAIT_MS", "-1", 'not "-1"'],
    ["HISTORY_RETENTION_DAYS", "abc", "HISTORY_RETENTION_DAYS must be a whole number of days from 1 to 3650"],
  ])("echoes a bad %s (%s) in the configuration error", (name, value, expected) => {
    const error = thrown(() => loadConfig({ ...TABLES, [name]: value }, ["tables", "publicBaseUrl"]));

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(expected);
  });

  it("waits 1.5 s for a quick task's result by default, 0 when asked", () => {
    expect(loadConfig(TABLES).toolInlineWaitMs).toBe(1_500);
    expect(loadConfig({ ...TABLES, TOOL_INLINE_WAIT_MS: "0" }).toolInlineWaitMs).toBe(0);
  });

  it("cuts a long bad value short", () => {
    const error = thrown(() => loadConfig({ ...TABLES, SESSION_TTL_MS: "x".repeat(500) }));

    expect((error as Error).message.length).toBeLessThan(200);
  });

  it("the banner's demo hint runs against 10-minute sessions: --wait, or how to restart with short ones", () => {
    const text = banner(server("http://127.0.0.1:3000", 600_000), 1000);

    expect(text).toContain("npm run demo -- --wait (waits 10 min for the expiry)");
    expect(text).toContain("SESSION_TTL_MS=5000 npm start and run npm run demo.");
  });

  it("the banner's demo hint is plain with short sessions and names a non-default port", () => {
    expect(banner(server("http://127.0.0.1:3000", 5000), 1000)).toContain(
      "Try: npm run demo (another terminal).",
    );
    const other = banner(server("http://127.0.0.1:4100", 600_000), 1000);
    expect(other).toContain("npm run demo -- --wait --url http://127.0.0.1:4100");
    expect(other).toContain(
      "SESSION_TTL_MS=5000 npm start -- --port 4100 and run npm run demo -- --url http://127.0.0.1:4100.",
    );
  });

  it("the banner says who runs the tasks, and that in manual mode the token reaches the transcript", () => {
    const line = (text: string) => text.split("\n").find((l) => l.includes("task dispatch")) ?? "";
    expect(line(banner(server("http://127.0.0.1:3000", 5000), 1000))).toContain(
      "in-process example runner (lookup_order, sleep); tool answers carry no callback token",
    );
    const own = server("http://127.0.0.1:3000", 5000, "runner-url", {
      RUNNER_URL: "http://127.0.0.1:9/tasks",
    });
    expect(line(banner(own, 1000))).toContain("POST to http://127.0.0.1:9/tasks (RUNNER_URL)");
    const manual = banner(server("http://127.0.0.1:3000", 5000, "none"), 1000);
    expect(line(manual)).toContain(
      "tool answers carry callbackUrl and callbackToken, so the token reaches the agent's transcript",
    );
    expect(manual).toContain("The demo needs a task runner: restart without --no-runner");
  });
});
