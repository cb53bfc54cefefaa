import { describe, expect, it } from "vitest";
import { runSmoke, runSmokeCli, type SmokeSecrets } from "../../../local/smoke.js";

const SECRETS: SmokeSecrets = { serviceToken: "svc", toolSecret: "tool", webhookSecret: "whsec" };
const BASE = "https://api.example.test";

interface FakeOptions {
  /** A runner completes the task after this many polls. */
  readonly runnerAfterPolls: number;
  /** The service has the erasure route. */
  readonly erasure?: boolean;
  /** The webhook secret the service checks with. */
  readonly webhookSecret?: string;
  /** The tool call answers `completed` with the result (the runner finished within the inline wait). */
  readonly inline?: boolean;
}

/** The service as the smoke test sees it, in memory, recording each request line. */
const fakeService = (options: FakeOptions) => {
  const calls: string[] = [];
  let polls = 0;
  let completed = false;
  const reply = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? "GET";
    const headers = (init?.headers ?? {}) as Record<string, string>;
    calls.push(`${method} ${url.pathname}`);
    const path = url.pathname;
    if (path.endsWith("/session"))
      return method === "POST"
        ? reply(201, { expiresAt: "2030-01-01T00:00:00.000Z" })
        : reply(200, { status: "active", remainingMs: 599_000 });
    if (path === "/tools/get_task_result") {
      polls += 1;
      if (polls >= options.runnerAfterPolls) completed = true;
      const taskId = JSON.parse(String(init?.body)).task_id;
      return reply(200, {
        status: "active",
        tasks: [{ taskId, status: completed ? "completed" : "pending" }],
        message: "m",
      });
    }
    // A runner is configured: the tool answer carries no callback (the callback path runs in e2e).
    if (path.startsWith("/tools/")) {
      if (!options.inline) return reply(200, { status: "accepted", taskId: "task-1", message: "m" });
      completed = true;
      return reply(200, {
        status: "completed",
        taskId: "task-1",
        result: { status: "failed" },
        message: "m",
      });
    }
    if (path === "/webhooks/elevenlabs/post-call") {
      const signature = headers["elevenlabs-signature"] ?? "";
      const { createHmac } = await import("node:crypto");
      const [t] = /t=(\d+)/.exec(signature)?.slice(1) ?? [];
      const expected = createHmac("sha256", options.webhookSecret ?? SECRETS.webhookSecret)
        .update(`${t}.${String(init?.body)}`)
        .digest("hex");
      return signature.endsWith(`v0=${expected}`)
        ? reply(200, { status: "stored" })
        : reply(401, { error: "invalid_signature", message: "The ElevenLabs-Signature header is missing." });
    }
    if (method === "DELETE")
      return options.erasure ? reply(200, { status: "erased" }) : reply(404, { message: "Not Found" });
    if (/^\/conversations\/[^/]+$/.test(path))
      return reply(200, {
        tasks: [{ taskId: "task-1", status: "completed" }],
        messages: [{ kind: "transcript" }, { kind: "transcript" }],
      });
    return reply(404, { message: "Not Found" });
  }) as typeof fetch;
  return { fetchImpl, calls };
};

const smoke = async (fake: ReturnType<typeof fakeService>, extra: { taskTimeoutMs?: number } = {}) => {
  const lines: string[] = [];
  const code = await runSmoke({
    url: BASE,
    secrets: SECRETS,
    out: (l) => lines.push(l),
    fetchImpl: fake.fetchImpl,
    pollIntervalMs: 1,
    ...extra,
  });
  return { code, lines };
};

describe("runSmoke", () => {
  it("with a task runner (no callback in the tool answer), polls get_task_result until the runner completed the task", async () => {
    const fake = fakeService({ runnerAfterPolls: 3 });

    const { code, lines } = await smoke(fake);

    expect(code, lines.join("\n")).toBe(0);
    expect(lines.find((l) => l.includes("task by the runner"))).toMatch(/the runner completed the task/);
    expect(fake.calls.filter((c) => c === "POST /tools/get_task_result").length).toBeGreaterThanOrEqual(3);
    expect(fake.calls.some((c) => c.includes("/tasks/"))).toBe(false);
  });

  it("takes a tool answer that already carries the result (inline wait) without polling for it", async () => {
    const fake = fakeService({ runnerAfterPolls: Number.POSITIVE_INFINITY, inline: true });

    const { code, lines } = await smoke(fake, { taskTimeoutMs: 20 });

    expect(code, lines.join("\n")).toBe(0);
    expect(lines.find((l) => l.includes("tool call"))).toMatch(/finished it within the inline wait/);
    expect(lines.some((l) => l.includes("task by the runner"))).toBe(false);
    expect(fake.calls.filter((c) => c === "POST /tools/get_task_result")).toHaveLength(1);
  });

  it("fails with one line when no runner completes the task in time", async () => {
    const fake = fakeService({ runnerAfterPolls: Number.POSITIVE_INFINITY });

    const { code, lines } = await smoke(fake, { taskTimeoutMs: 20 });

    expect(code).toBe(1);
    expect(lines.at(-1)).toMatch(
      /✗ +4 task by the runner .*still pending after 20 ms: is a task runner consuming/,
    );
  });

  it("uses DELETE /conversations/{id} to remove its data once the service has it", async () => {
    const fake = fakeService({ runnerAfterPolls: 1, erasure: true });

    const { code, lines } = await smoke(fake);

    expect(code).toBe(0);
    expect(lines.find((l) => l.includes("remove test data"))).toMatch(/200 .*removed/);
    expect(fake.calls).toContain(
      `DELETE ${fake.calls.find((c) => /^GET \/conversations\/[^/]+$/.test(c))?.slice(4)}`,
    );
  });

  it("says the data is left in place when the service answers 404 to DELETE", async () => {
    const { code, lines } = await smoke(fakeService({ runnerAfterPolls: 1 }));

    expect(code).toBe(0);
    expect(lines.find((l) => l.includes("remove test data"))).toMatch(/404 .*left in place/);
  });

  it("stops at the signed webhook with one line when the webhook secret differs from the service's", async () => {
    const fake = fakeService({ runnerAfterPolls: 1, webhookSecret: "another" });

    const { code, lines } = await smoke(fake);

    expect(code).toBe(1);
    expect(lines.filter((l) => l.startsWith("✗"))).toEqual([
      expect.stringMatching(
        /signed webhook .*HTTP 401 invalid_signature.*is the webhook secret the one ElevenLabs signs with/,
      ),
    ]);
    expect(fake.calls.some((c) => c.startsWith("DELETE"))).toBe(false);
  });
});

describe("npm run smoke: bad invocations are one line, before any request", () => {
  const cli = async (argv: string[]) => {
    const err: string[] = [];
    const out: string[] = [];
    const code = await runSmokeCli(argv, {}, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, err, out };
  };

  it.each([
    [["--url", "https://https://abc.example"], /^npm run smoke: --url has its scheme twice/],
    [[], /^npm run smoke: --url is required/],
    [
      ["--url", "http://127.0.0.1:1", "--stage", "Prod Stage"],
      /^npm run smoke: --stage must be a lower-case stage name, not "Prod Stage"\.$/,
    ],
    [["--url", "http://127.0.0.1:1", "--bogus"], /^npm run smoke: Unknown option '--bogus'/],
    [["--url", "http://127.0.0.1:1", "--task-timeout-ms", "soon"], /not "soon"/],
  ])("%j", async (argv, expected) => {
    const { code, err, out } = await cli(argv);

    expect(code).toBe(1);
    expect(err).toEqual([expect.stringMatching(expected)]);
    expect(out).toEqual([]);
  });
});
