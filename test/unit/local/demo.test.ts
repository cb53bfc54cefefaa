import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { runDemo } from "../../../local/demo.js";
import { compactJson } from "../../../local/demo-output.js";
import { DEMO_STEPS } from "../../../local/demo-steps.js";

/** A service that answers only GET /health, with `health`; every other request is counted. */
const fakeService = async (health: Record<string, unknown>) => {
  const others: string[] = [];
  const server: Server = createServer((req, res) => {
    if (req.url === "/health")
      return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(health));
    others.push(`${req.method} ${req.url}`);
    res.writeHead(404).end();
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, others, close: () => new Promise<void>((done) => server.close(() => done())) };
};

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const healthOf = (overrides: Record<string, unknown>) => ({
  status: "ok",
  sessionTtlMs: 3000,
  dynamodb: "embedded-in-memory",
  callbackInToolResponse: false,
  taskRunner: "in-process",
  ...overrides,
});

describe("npm run demo refuses a service it cannot play, in one line", () => {
  it("exits 2 against manual mode (--no-runner): nobody would do its tasks", async () => {
    const service = await fakeService(healthOf({ callbackInToolResponse: true, taskRunner: "none" }));
    closers.push(service.close);
    const printed: string[] = [];
    const problems: string[] = [];

    const result = await runDemo({
      url: service.url,
      print: (l) => printed.push(l),
      printProblem: (l) => problems.push(l),
    });

    expect(result.exitCode).toBe(2);
    expect(printed).toEqual([]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("runs no task runner (manual mode, --no-runner)");
    expect(problems[0]).toContain("restart it without --no-runner");
    expect(service.others).toEqual([]);
  });

  it("exits 2 against 10-minute sessions without --wait, before sending anything else", async () => {
    const service = await fakeService(healthOf({ sessionTtlMs: 600_000 }));
    closers.push(service.close);
    const problems: string[] = [];

    const result = await runDemo({
      url: service.url,
      print: () => undefined,
      printProblem: (l) => problems.push(l),
    });

    expect(result.exitCode).toBe(2);
    expect(problems[0]).toContain("--wait");
    expect(service.others).toEqual([]);
  });
});

describe("the demo's table of steps", () => {
  it("has twelve steps, one of them the wait for the expiry, as the README shows", () => {
    expect(DEMO_STEPS.map((s) => s.title)).toEqual([
      "register session",
      "read session",
      "tool call",
      "second tool call",
      "result while live",
      "agent polls",
      "wait for expiry",
      "read session",
      "result after expiry",
      "tool after expiry",
      "post-call webhook",
      "read history",
    ]);
  });

  it("prints a stored result with ids first, then status, then the rest in order, whatever order it was stored in", () => {
    expect(
      compactJson(
        { total: 1, status: "shipped", items: [{ quantity: 1, productId: "p" }], orderId: "A1" },
        200,
      ),
    ).toBe('{"orderId":"A1","status":"shipped","items":[{"productId":"p","quantity":1}],"total":1}');
    expect(compactJson({ b: 1, a: 2 }, 4)).toBe('{"a…');
  });
});
