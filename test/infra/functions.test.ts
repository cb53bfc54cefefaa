import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { App, Stack } from "aws-cdk-lib";
import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../functions/core/config.js";
import { DEFAULT_TOOL_INLINE_WAIT_MS, ROUTES } from "../../functions/core/routes.js";
import { METRICS_NAMESPACE, SERVICE_NAME } from "../../functions/core/service-names.js";
import { LAMBDA_BUNDLE } from "../../lib/bundling.js";
import { SERVICE_FUNCTION_BUNDLING, ServiceFunction } from "../../lib/constructs/service-function.js";
import type { SessionsStack } from "../../lib/sessions-stack.js";
import { actionsByResource, functionFacts, refId, synthStack } from "./synth.js";

// What each access level must be able to do, worked out independently from the stores:
// SessionStore: lookup = GetItem (consistent); activeCondition = ConditionCheck inside a
// transaction (IAM: ConditionCheckItem); set = Put inside TransactWriteItems (IAM: PutItem);
// delete = DeleteItem. ConversationStore: getMeta/getTask = GetItem; listTasks/getConversation =
// Query; listConversations = Query on the by-created index; writes = PutItem/UpdateItem (alone and
// in transactions) and BatchWriteItem (appendMessages' puts, eraseConversation's deletes).
const EXPECTED_DYNAMODB = {
  sessions: {
    read: { sessions: ["dynamodb:ConditionCheckItem", "dynamodb:GetItem"] },
    write: {
      sessions: [
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
      ],
    },
  },
  conversations: {
    read: {
      conversations: ["dynamodb:GetItem", "dynamodb:Query"],
      "conversations/index/by-created": ["dynamodb:Query"],
    },
    write: {
      conversations: [
        "dynamodb:BatchWriteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
      ],
      "conversations/index/by-created": ["dynamodb:Query"],
    },
  },
} as const;

describe("functions", () => {
  let stack: SessionsStack;
  let template: Template;
  let tableNames: Record<string, string>;
  beforeAll(() => {
    ({ stack, template } = synthStack());
    tableNames = {
      [stack.getLogicalId(stack.tables.sessions.node.defaultChild as never)]: "sessions",
      [stack.getLogicalId(stack.tables.conversations.node.defaultChild as never)]: "conversations",
    };
  });

  it("builds exactly one function per route name (a tool route answers POST and GET), described by its route, plus the example task runner and the scheduled reconciliation", () => {
    template.resourceCountIs("AWS::Lambda::Function", new Set(ROUTES.map((r) => r.name)).size + 2);
    for (const route of ROUTES) {
      expect(functionFacts(stack, template, route.name).resource.Properties.Description).toBe(
        route.description,
      );
    }
  });

  it("runs every function on Node 22 or newer, ARM64, active tracing, 512 MB and its route's timeout (10 s default)", () => {
    for (const route of ROUTES) {
      const props = functionFacts(stack, template, route.name).resource.Properties;
      const major = Number(/^nodejs(\d+)\.x$/.exec(String(props.Runtime))?.[1]);
      expect(major, route.name).toBeGreaterThanOrEqual(22);
      expect(props, route.name).toMatchObject({
        Architectures: ["arm64"],
        TracingConfig: { Mode: "Active" },
        MemorySize: 512,
        Timeout: route.name === "call-tool" ? 12 : (route.timeoutSeconds ?? 10),
        Handler: "index.handler",
      });
    }
    expect(functionFacts(stack, template, "post-call-webhook").resource.Properties.Timeout).toBe(30);
  });

  it("lets only the tool route wait for its task's result, with a timeout that covers the wait", () => {
    for (const route of ROUTES) {
      expect(functionFacts(stack, template, route.name).env.TOOL_INLINE_WAIT_MS, route.name).toBe(
        route.name === "call-tool" ? String(DEFAULT_TOOL_INLINE_WAIT_MS) : undefined,
      );
    }
    // The default wait (1.5 s) rounds up to 2 s, plus the route's own 10 s.
    expect(functionFacts(stack, template, "call-tool").resource.Properties.Timeout).toBe(12);
    const long = synthStack({ toolInlineWaitMs: "15000" });
    const longFacts = functionFacts(long.stack, long.template, "call-tool");
    expect(longFacts.env.TOOL_INLINE_WAIT_MS).toBe("15000");
    expect(longFacts.resource.Properties.Timeout).toBe(25);
    const off = synthStack({ toolInlineWaitMs: "0" });
    expect(functionFacts(off.stack, off.template, "call-tool").env.TOOL_INLINE_WAIT_MS).toBe("0");
    expect(functionFacts(off.stack, off.template, "call-tool").resource.Properties.Timeout).toBe(10);
    expect(() => synthStack({ toolInlineWaitMs: "15001" })).toThrow(/toolInlineWaitMs.*0 to 15000/);
    expect(() => synthStack({ toolInlineWaitMs: "1.5s" })).toThrow(/toolInlineWaitMs/);
  });

  it("gives every function the Parameters and Secrets extension (arm64) with a 5-minute secret cache", () => {
    for (const route of ROUTES) {
      const props = functionFacts(stack, template, route.name).resource.Properties;
      expect(JSON.stringify(props.Layers), route.name).toMatch(
        /AWS-Parameters-and-Secrets-Lambda-Extension-Arm64|1x0x103xarm64/i,
      );
      expect(
        (props.Environment as { Variables: Record<string, unknown> }).Variables,
        route.name,
      ).toMatchObject({
        PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED: "true",
        SECRETS_MANAGER_TTL: "300",
      });
    }
  });

  it("sends each function's logs to its own log group, kept for a month, writable by that function only", () => {
    const resources = template.toJSON().Resources as Record<
      string,
      { Type: string; Properties: Record<string, unknown> }
    >;
    const logGroups = new Set<string>();
    for (const route of ROUTES) {
      const fn = functionFacts(stack, template, route.name);
      const logGroupId = refId((fn.resource.Properties.LoggingConfig as { LogGroup: unknown }).LogGroup);
      expect(logGroupId, route.name).toBeDefined();
      logGroups.add(String(logGroupId));
      expect(resources[String(logGroupId)]?.Properties.RetentionInDays, route.name).toBe(30);
      const logs = actionsByResource(fn.statements, { [String(logGroupId)]: "own-log-group" }, "logs:");
      expect(logs, route.name).toEqual({ "own-log-group": ["logs:CreateLogStream", "logs:PutLogEvents"] });
    }
    expect(logGroups.size).toBe(new Set(ROUTES.map((r) => r.name)).size);
  });

  it("uses explicit roles without managed policies (no AWSLambdaBasicExecutionRole)", () => {
    for (const route of ROUTES) {
      const { roleId } = functionFacts(stack, template, route.name);
      const role = template.toJSON().Resources[roleId];
      expect(role.Properties.ManagedPolicyArns, route.name).toBeUndefined();
    }
  });

  it("sets the Powertools service, namespace and log level, and loads no source maps at run time", () => {
    for (const route of ROUTES) {
      const { env } = functionFacts(stack, template, route.name);
      expect(env, route.name).toMatchObject({
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: "INFO",
      });
      // --enable-source-maps parses the map on every cold start; the map is kept for offline use.
      expect(env.NODE_OPTIONS ?? "", route.name).not.toMatch(/source-maps/);
    }
  });

  it("gives every function an environment that its config accepts at cold start", () => {
    for (const route of ROUTES) {
      const { env } = functionFacts(stack, template, route.name);
      // Tokens become plausible literals: the point is which variables are there, not their values.
      const literal = Object.fromEntries(
        Object.entries(env).map(([key, value]) => [
          key,
          typeof value === "string" ? value : key.endsWith("_URL") ? "https://resolved.example" : "resolved",
        ]),
      );
      const config = loadConfig(literal, route.access.taskQueue ? ["tables", "publicBaseUrl"] : ["tables"]);
      expect(Boolean(config.taskQueueUrl), route.name).toBe(Boolean(route.access.taskQueue));
      expect(Boolean(config.parkingQueueUrl), route.name).toBe(Boolean(route.access.parkingQueue));
      // The callback token reaches the task runner through the queue, never the LLM's tool answer.
      if (route.access.taskQueue) expect(config.exposeCallbackInToolResponse, route.name).toBe(false);
    }
  });

  it("never grants dynamodb:* or DynamoDB actions on Resource *", () => {
    for (const route of ROUTES) {
      for (const statement of functionFacts(stack, template, route.name).statements) {
        const dynamo = statement.Action.filter((a) => a.startsWith("dynamodb:"));
        expect(dynamo, route.name).not.toContain("dynamodb:*");
        if (dynamo.length > 0) expect(statement.Resource, route.name).not.toContain("*");
      }
    }
  });

  it("allows Resource * only for the X-Ray actions of active tracing", () => {
    for (const route of ROUTES) {
      for (const statement of functionFacts(stack, template, route.name).statements) {
        if (!statement.Resource.includes("*")) continue;
        expect(statement.Action.sort(), route.name).toEqual([
          "xray:PutTelemetryRecords",
          "xray:PutTraceSegments",
        ]);
      }
    }
  });

  it("grants each function exactly the DynamoDB actions of its route's access levels", () => {
    for (const route of ROUTES) {
      const granted = actionsByResource(
        functionFacts(stack, template, route.name).statements,
        tableNames,
        "dynamodb:",
      );
      const expected = {
        ...(route.access.sessions ? EXPECTED_DYNAMODB.sessions[route.access.sessions] : {}),
        ...(route.access.conversations ? EXPECTED_DYNAMODB.conversations[route.access.conversations] : {}),
      };
      expect(granted, route.name).toEqual(expected);
    }
  });

  it("gives every function both table names (a name grants nothing)", () => {
    for (const route of ROUTES) {
      const { env } = functionFacts(stack, template, route.name);
      expect(tableNames[String(refId(env.SESSIONS_TABLE))], route.name).toBe("sessions");
      expect(tableNames[String(refId(env.CONVERSATIONS_TABLE))], route.name).toBe("conversations");
    }
  });

  it("reserves no concurrency by default, and reserves it for every function when context asks", () => {
    for (const route of ROUTES) {
      expect(
        functionFacts(stack, template, route.name).resource.Properties.ReservedConcurrentExecutions,
      ).toBeUndefined();
    }
    const reserved = synthStack({ reservedConcurrency: "5" });
    for (const route of ROUTES) {
      expect(
        functionFacts(reserved.stack, reserved.template, route.name).resource.Properties
          .ReservedConcurrentExecutions,
      ).toBe(5);
    }
  });

  it("shortens sessions only when a demo stage asks, and never in prod", () => {
    for (const route of ROUTES) {
      expect(functionFacts(stack, template, route.name).env.SESSION_TTL_MS, route.name).toBeUndefined();
    }
    const demo = synthStack({ stage: "demo", sessionTtlMs: "60000" });
    for (const route of ROUTES) {
      expect(functionFacts(demo.stack, demo.template, route.name).env.SESSION_TTL_MS, route.name).toBe(
        route.access.sessions ? "60000" : undefined,
      );
    }
    expect(() => synthStack({ stage: "prod", sessionTtlMs: "60000" })).toThrow(/sessionTtlMs/);
  });
});

describe("ServiceFunction bundling", () => {
  it("bundles a handler locally (no Docker) as minified ESM with a source map", () => {
    const app = new App();
    new ServiceFunction(new Stack(app, "Bundle"), "GetSession", { name: "get-session" });
    const assembly = app.synth();
    const assets = readdirSync(assembly.directory).filter((entry) => entry.startsWith("asset."));
    expect(assets).toHaveLength(1);
    const dir = join(assembly.directory, String(assets[0]));
    expect(existsSync(join(dir, "index.mjs.map"))).toBe(true);
    const code = readFileSync(join(dir, "index.mjs"), "utf8");
    // The SDK's default credential chain is aliased to env-only credentials (lib/bundling.ts):
    // the chain's own error is gone, the env-only module's is there.
    expect(code).not.toContain("Could not load credentials from any providers");
    expect(code).toContain("No AWS credentials in the environment");
    // Event streams and mnemonist are aliased away too: the stand-in's message is there, the real code is not.
    expect(code).toContain("Event streams are not bundled");
    expect(code).not.toContain("Truncated event message received.");
    expect(code).not.toContain("obliterator");
    expect(code.startsWith("import{createRequire")).toBe(true);
    expect(code).toMatch(/export\s*\{[^}]*handler/);
    // Minified: hundreds of KB in a few dozen lines (license comments keep their own lines).
    expect(code.length / code.split("\n").length).toBeGreaterThan(2000);
  });

  it("hands esbuild the shared Lambda settings, every alias included", () => {
    expect(SERVICE_FUNCTION_BUNDLING.esbuildArgs).toEqual({
      "--alias": [
        "@aws-sdk/credential-provider-node=./functions/core/lambda-credentials.ts",
        "@smithy/core/event-streams=./functions/core/lambda-no-event-streams.ts",
        "mnemonist/lru-cache=./functions/core/lambda-lru-cache.ts",
      ],
    });
    expect(SERVICE_FUNCTION_BUNDLING).toMatchObject({
      target: LAMBDA_BUNDLE.target,
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      externalModules: [],
    });
  });

  it("refuses a function without a handler folder", () => {
    expect(
      () => new ServiceFunction(new Stack(new App(), "Missing"), "Nope", { name: "no-such-function" }),
    ).toThrow(/no handler/);
  });
});
