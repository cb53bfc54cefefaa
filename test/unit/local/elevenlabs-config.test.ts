import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ElevenLabs } from "@elevenlabs/elevenlabs-js";
import * as sdkSerialization from "@elevenlabs/elevenlabs-js/serialization/index.js";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { normalizeApiUrl } from "../../../local/api-url.js";
import { errorDetail } from "../../../local/elevenlabs-api.js";
import { runElevenLabsConfig } from "../../../local/elevenlabs-config.js";
import type { buildElevenLabsSetup } from "../../../local/elevenlabs-setup.js";
import { DEFAULT_TOOLS_FILE, parseToolsFile } from "../../../local/elevenlabs-tools.js";
import { type FakeElevenLabs, startFakeElevenLabs } from "../../support/fake-elevenlabs.js";

// The SDK is CommonJS: under ESM its serializers arrive as the default export.
const sdk = ((sdkSerialization as unknown as { default?: typeof sdkSerialization }).default ??
  sdkSerialization) as typeof sdkSerialization;
/** The SDK's own wire schemas, strict: an unknown key, enum value or union member fails. */
const STRICT = {
  unrecognizedObjectKeys: "fail",
  allowUnrecognizedUnionMembers: false,
  allowUnrecognizedEnumValues: false,
} as const;

const API_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/";
const API_KEY = "xi-test-key";
const TOOL_SECRET = "tool-secret-value-1234567890";

const run = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runElevenLabsConfig(argv, env, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join("\n"), err };
};

const printed = async (...extra: string[]) => {
  const result = await run(["--url", API_URL, ...extra]);
  expect(result.err).toEqual([]);
  return JSON.parse(result.out) as ReturnType<typeof buildElevenLabsSetup>;
};

describe("npm run elevenlabs:config (printing)", () => {
  it("prints tools that ElevenLabs' SDK schema accepts as tool create/update requests", async () => {
    const setup = await printed();
    for (const tool of setup.tools) {
      const parsed = sdk.ToolRequestModel.parse(tool, STRICT);
      expect(parsed.ok, JSON.stringify(parsed.ok ? "" : parsed.errors)).toBe(true);
      if (!parsed.ok) continue;
      // Typed: what the SDK would send for this tool.
      const config: ElevenLabs.ToolRequestModel["toolConfig"] = parsed.value.toolConfig;
      expect(config.type).toBe("webhook");
    }
  });

  it("prints webhook and settings bodies that ElevenLabs' SDK schema accepts", async () => {
    const setup = await printed();
    expect(
      sdk.BodyCreateWorkspaceWebhookV1WorkspaceWebhooksPost.parse(setup.post_call_webhook, STRICT).ok,
    ).toBe(true);
    expect(sdk.conversationalAi.PatchConvAiSettingsRequest.parse(setup.convai_settings, STRICT).ok).toBe(
      true,
    );
  });

  it("declares every tool as POST with the secret header and conversation_id from system__conversation_id", async () => {
    const setup = await printed();
    expect(setup.tools.map((t) => t.tool_config.name)).toEqual([
      "lookup_order",
      "schedule_callback",
      "get_task_result",
    ]);
    for (const { tool_config: tool } of setup.tools) {
      expect(tool.api_schema.method).toBe("POST");
      expect(Object.keys(tool.api_schema.request_headers)).toEqual(["X-Tool-Secret"]);
      expect(tool.api_schema.request_headers["X-Tool-Secret"]).toHaveProperty("secret_id");
      expect(tool.api_schema.request_body_schema.properties.conversation_id).toEqual({
        type: "string",
        dynamic_variable: "system__conversation_id",
      });
      expect(tool.api_schema.request_body_schema.required).toContain("conversation_id");
      expect(tool.response_timeout_secs).toBe(20);
      expect(tool.execution_mode).toBe("immediate");
    }
    const lookup = setup.tools[0]?.tool_config;
    expect(lookup?.api_schema.url).toBe(
      "https://abc123.execute-api.eu-west-1.amazonaws.com/tools/lookup_order",
    );
    expect(lookup?.api_schema.request_body_schema.required).toEqual(["conversation_id", "order_id"]);
    expect(setup.tools[2]?.tool_config.api_schema.url).toBe(
      "https://abc123.execute-api.eu-west-1.amazonaws.com/tools/get_task_result",
    );
    expect(setup.post_call_webhook.settings.webhook_url).toBe(
      "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/elevenlabs/post-call",
    );
    expect(setup.convai_settings.webhooks.events).toEqual(["transcript", "call_initiation_failure"]);
  });

  it("never doubles the scheme: the ApiUrl output as it is, or a bare host, give the same URLs", async () => {
    const a = await printed();
    const b = JSON.parse((await run(["--url", "abc123.execute-api.eu-west-1.amazonaws.com"])).out);
    expect(b).toEqual(a);
    expect(JSON.stringify(a)).not.toMatch(/https:\/\/https|[^:]\/\/(tools|webhooks)/);
  });

  it("refuses a doubled scheme with one line", async () => {
    const result = await run(["--url", `https://${API_URL}`]);
    expect(result.code).toBe(1);
    expect(result.err).toEqual([
      expect.stringMatching(/^npm run elevenlabs:config: --url has its scheme twice/),
    ]);
  });

  it("normalizes any ApiUrl-like input to one scheme and no trailing slash", () => {
    fc.assert(
      fc.property(fc.domain(), fc.boolean(), fc.boolean(), (host, scheme, slash) => {
        const base = normalizeApiUrl(`${scheme ? "https://" : ""}${host}${slash ? "/" : ""}`);
        expect(base).toBe(`https://${new URL(`https://${host}`).host}`);
        expect(normalizeApiUrl(base)).toBe(base);
      }),
    );
  });

  it("reports ElevenLabs' validation messages without echoing the input (it may be the secret)", () => {
    const body = JSON.stringify({
      detail: [
        { loc: ["body", "value"], msg: "String should have at most 100 characters", input: "SECRET-VALUE" },
      ],
    });
    expect(errorDetail(body)).toBe(": body.value String should have at most 100 characters");
    expect(errorDetail(JSON.stringify({ detail: { status: "x", message: "Agent not found" } }))).toBe(
      ": Agent not found",
    );
    expect(errorDetail("<html>")).toBe("");
  });

  it("checks the tools file: reserved names, conversation_id, duplicates and bad fields", () => {
    const file = (tools: unknown) => JSON.stringify({ tools });
    const tool = { name: "t", description: "d" };
    expect(parseToolsFile(readFileSync(DEFAULT_TOOLS_FILE, "utf8"))).toHaveLength(2);
    expect(() => parseToolsFile(file([{ ...tool, name: "get_task_result" }]))).toThrow(/added for you/);
    expect(() => parseToolsFile(file([tool, tool]))).toThrow(/listed twice/);
    expect(() =>
      parseToolsFile(
        file([{ ...tool, parameters: { conversation_id: { type: "string", description: "x" } } }]),
      ),
    ).toThrow(/system__conversation_id/);
    expect(() => parseToolsFile(file([{ ...tool, name: "has space" }]))).toThrow(/tools\.0\.name/);
    expect(() => parseToolsFile(file([{ ...tool, execution_mode: "later" }]))).toThrow(/execution_mode/);
    expect(() => parseToolsFile("{")).toThrow(/not valid JSON/);
    expect(() => parseToolsFile(file([]))).toThrow(/tools/);
  });
});

describe("npm run elevenlabs:config -- --apply (against a fake ElevenLabs API on 127.0.0.1)", () => {
  let fake: FakeElevenLabs;
  let dir: string;
  beforeEach(async () => {
    fake = await startFakeElevenLabs(API_KEY);
    dir = mkdtempSync(join(tmpdir(), "elevenlabs-config-"));
  });
  afterEach(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const apply = (env: NodeJS.ProcessEnv = {}) =>
    run(["--url", API_URL, "--agent", "agent_1", "--apply", "--webhook-secret-file", join(dir, "wsec.txt")], {
      ELEVENLABS_API_KEY: API_KEY,
      ELEVENLABS_API_BASE_URL: fake.url,
      TOOL_SECRET,
      ...env,
    });

  it("creates the secret, webhook, tools, settings and attaches the tools to the agent", async () => {
    const result = await apply();

    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    expect(fake.requests.every((r) => r.apiKey === API_KEY)).toBe(true);
    expect(fake.requests.filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.path}`)).toEqual([
      "POST /v1/convai/secrets",
      "POST /v1/workspace/webhooks",
      "POST /v1/convai/tools",
      "POST /v1/convai/tools",
      "POST /v1/convai/tools",
      "PATCH /v1/convai/settings",
      "PATCH /v1/convai/agents/agent_1",
    ]);
    const [secret] = fake.state.secrets;
    expect(secret).toMatchObject({ name: "elevenlabs-agent-sessions-local-tool-secret", value: TOOL_SECRET });
    for (const tool of fake.state.tools) {
      expect(tool.tool_config).toMatchObject({
        api_schema: {
          method: "POST",
          request_headers: { "X-Tool-Secret": { secret_id: secret?.secret_id } },
        },
      });
      expect(sdk.ToolRequestModel.parse({ tool_config: tool.tool_config }, STRICT).ok).toBe(true);
    }
    expect(fake.state.settings).toEqual({
      webhooks: {
        post_call_webhook_id: fake.state.webhooks[0]?.webhook_id,
        events: ["transcript", "call_initiation_failure"],
      },
    });
    expect(fake.state.agents.agent_1?.conversation_config.agent.prompt.tool_ids).toEqual([
      "tool_existing",
      ...fake.state.tools.map((t) => t.id),
    ]);
    // The new webhook's HMAC secret goes to a private file, never to the output.
    const file = join(dir, "wsec.txt");
    expect(readFileSync(file, "utf8")).toMatch(/^wsec_fake_/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(result.out).not.toContain("wsec_fake_");
    expect(result.out).not.toContain(TOOL_SECRET);
    expect(result.out).toContain(
      "put-secret-value --secret-id elevenlabs-agent-sessions/<stage>/webhook-secret",
    );
  });

  it("is idempotent: a second run updates in place and creates nothing", async () => {
    await apply();
    const before = {
      tools: fake.state.tools.length,
      secrets: fake.state.secrets.length,
      webhooks: fake.state.webhooks.length,
    };
    fake.requests.length = 0;

    const again = await apply({ TOOL_SECRET: "rotated-tool-secret-0987654321" });

    expect(again.code).toBe(0);
    expect(fake.requests.filter((r) => r.method === "POST")).toEqual([]);
    expect({
      tools: fake.state.tools.length,
      secrets: fake.state.secrets.length,
      webhooks: fake.state.webhooks.length,
    }).toEqual(before);
    expect(fake.state.secrets[0]?.value).toBe("rotated-tool-secret-0987654321");
    expect(new Set(fake.state.agents.agent_1?.conversation_config.agent.prompt.tool_ids).size).toBe(4);
  });

  it("fails with one line naming the call when ElevenLabs refuses the key", async () => {
    const result = await apply({ ELEVENLABS_API_KEY: "wrong" });

    expect(result.code).toBe(1);
    expect(result.err).toEqual([
      "npm run elevenlabs:config: GET /v1/convai/secrets answered HTTP 401 (check ELEVENLABS_API_KEY)",
    ]);
    expect(fake.state.tools).toEqual([]);
  });

  it("fails with one line when the key or the tool secret is missing, before calling anything", async () => {
    const noKey = await apply({ ELEVENLABS_API_KEY: "" });
    const noSecret = await apply({ TOOL_SECRET: "" });

    expect(noKey.err).toEqual([expect.stringContaining("--apply needs ELEVENLABS_API_KEY")]);
    expect(noSecret.err).toEqual([expect.stringContaining("--apply needs the tool secret")]);
    expect(fake.requests).toEqual([]);
  });

  it("fails with one line for an unknown agent, after the tools exist", async () => {
    const result = await run(
      ["--url", API_URL, "--agent", "agent_missing", "--apply", "--webhook-secret-file", join(dir, "w")],
      {
        ELEVENLABS_API_KEY: API_KEY,
        ELEVENLABS_API_BASE_URL: fake.url,
        TOOL_SECRET,
      },
    );

    expect(result.code).toBe(1);
    expect(result.err).toEqual([
      expect.stringMatching(/GET \/v1\/convai\/agents\/agent_missing answered HTTP 404/),
    ]);
  });
});
