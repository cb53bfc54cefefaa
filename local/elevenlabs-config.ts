/**
 * `npm run elevenlabs:config -- --url <ApiUrl> [--agent <agentId>] [--apply]`: the ElevenLabs side
 * of a deploy as code. Prints the server tools (one webhook tool per entry of
 * `elevenlabs/tools.json`, plus `get_task_result`) and the post-call webhook settings in the
 * JSON ElevenLabs' API takes; with `--apply` and `ELEVENLABS_API_KEY` creates or updates them:
 * the tool secret as a workspace secret, each tool (matched by name), the post-call webhook
 * (matched by URL) and the workspace's webhook settings, then attaches the tools to `--agent`.
 */
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import * as z from "zod/mini";
import { ID_PATTERN } from "../functions/core/ids.js";
import { routeNamed } from "../functions/core/routes.js";
import { DEFAULT_ELEVENLABS_API_BASE_URL } from "../functions/core/signed-url-api.js";
import { ApiUrlError, normalizeApiUrl, routeUrl } from "./api-url.js";
import { isParseArgsError, runIfMain } from "./cli.js";
import { readStageSecrets, StageSecretError, stageSecretId } from "./stage-secrets.js";

/** The tools file: `elevenlabs/tools.json`. */
export const DEFAULT_TOOLS_FILE = resolve(import.meta.dirname, "..", "elevenlabs", "tools.json");

/** The body property ElevenLabs fills from the conversation, never the LLM. */
const CONVERSATION_ID_PROPERTY = {
  type: "string",
  dynamic_variable: "system__conversation_id",
} as const;

/** Post-call events this service stores; audio is left off (not stored, and too large). */
export const POST_CALL_EVENTS = ["transcript", "call_initiation_failure"] as const;

/** Within the service's own answers (a few hundred ms) and below ElevenLabs' 20 s default. */
const DEFAULT_RESPONSE_TIMEOUT_SECS = 20;

const parameterSchema = z.strictObject({
  type: z.enum(["string", "number", "integer", "boolean"]),
  description: z.string().check(z.minLength(1)),
  required: z.optional(z.boolean()),
  enum: z.optional(z.array(z.string())),
});

const toolSchema = z.strictObject({
  name: z.string().check(z.regex(ID_PATTERN), z.maxLength(64)),
  description: z.string().check(z.minLength(1)),
  parameters: z.optional(
    z.record(z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/)), parameterSchema),
  ),
  response_timeout_secs: z.optional(z.int().check(z.gte(5), z.lte(300))),
  execution_mode: z.optional(z.enum(["immediate", "post_tool_speech", "async"])),
});

const toolsFileSchema = z.looseObject({ tools: z.array(toolSchema).check(z.minLength(1)) });

/** One async tool of the agent, as the tools file declares it. */
export type ToolSpec = z.infer<typeof toolSchema>;

/** Thrown for a bad invocation or tools file: one line for the operator. */
export class ElevenLabsConfigError extends Error {
  override readonly name = "ElevenLabsConfigError";
}

/** Reads and checks the tools file; problems name the file and the field. */
export const parseToolsFile = (text: string, file = "tools file"): ToolSpec[] => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ElevenLabsConfigError(`${file} is not valid JSON.`);
  }
  const parsed = toolsFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ElevenLabsConfigError(
      `${file}: ${issue?.path.join(".") || "root"}: ${issue?.message ?? "invalid"}.`,
    );
  }
  const names = new Set<string>();
  for (const tool of parsed.data.tools) {
    if (tool.name === "get_task_result")
      throw new ElevenLabsConfigError(`${file}: get_task_result is added for you; remove it from the file.`);
    if (names.has(tool.name))
      throw new ElevenLabsConfigError(`${file}: the tool ${tool.name} is listed twice.`);
    names.add(tool.name);
    if (tool.parameters && "conversation_id" in tool.parameters)
      throw new ElevenLabsConfigError(
        `${file}: ${tool.name} declares conversation_id; it is always sent from system__conversation_id.`,
      );
  }
  return parsed.data.tools;
};

/** A tool as `POST /v1/convai/tools` takes it (ElevenLabs' wire format, snake_case). */
export interface ToolRequest {
  readonly tool_config: {
    readonly type: "webhook";
    readonly name: string;
    readonly description: string;
    readonly response_timeout_secs: number;
    readonly execution_mode: "immediate" | "post_tool_speech" | "async";
    readonly api_schema: {
      readonly url: string;
      readonly method: "POST";
      readonly content_type: "application/json";
      readonly request_headers: Readonly<Record<string, { readonly secret_id: string }>>;
      readonly request_body_schema: {
        readonly type: "object";
        readonly required: readonly string[];
        readonly properties: Readonly<Record<string, Record<string, unknown>>>;
      };
    };
  };
}

/** Everything the ElevenLabs side needs, in the API's own shapes. */
export interface ElevenLabsSetup {
  /** The workspace secret the tools' `X-Tool-Secret` header reads (value: the stage's tool secret). */
  readonly workspace_secret: { readonly name: string };
  readonly tools: readonly ToolRequest[];
  /** `POST /v1/workspace/webhooks` body. */
  readonly post_call_webhook: {
    readonly settings: { readonly auth_type: "hmac"; readonly name: string; readonly webhook_url: string };
  };
  /** `PATCH /v1/convai/settings` body. */
  readonly convai_settings: {
    readonly webhooks: { readonly post_call_webhook_id: string; readonly events: readonly string[] };
  };
  /** With `--agent`: the agent the tools are attached to (`conversation_config.agent.prompt.tool_ids`). */
  readonly agent?: { readonly agent_id: string; readonly tool_names: readonly string[] };
}

export interface SetupOptions {
  /** The service's base URL (normalized). */
  readonly apiUrl: string;
  readonly tools: readonly ToolSpec[];
  /** Workspace secret name. */
  readonly secretName: string;
  /** The workspace secret's id once known; a placeholder when printing. */
  readonly secretId?: string;
  /** The post-call webhook's id once known; a placeholder when printing. */
  readonly webhookId?: string;
  readonly agentId?: string;
  /** Webhook display name. @default "elevenlabs-agent-sessions post-call" */
  readonly webhookName?: string;
}

const TOOL_SECRET_HEADER = "X-Tool-Secret";

const webhookTool = (
  options: SetupOptions,
  spec: {
    name: string;
    description: string;
    path: string;
    parameters: Record<string, z.infer<typeof parameterSchema>>;
  },
  tuning: Pick<ToolSpec, "response_timeout_secs" | "execution_mode">,
): ToolRequest => {
  const properties: Record<string, Record<string, unknown>> = {
    conversation_id: { ...CONVERSATION_ID_PROPERTY },
  };
  const required = ["conversation_id"];
  for (const [name, parameter] of Object.entries(spec.parameters)) {
    properties[name] = {
      type: parameter.type,
      description: parameter.description,
      ...(parameter.enum ? { enum: parameter.enum } : {}),
    };
    if (parameter.required) required.push(name);
  }
  return {
    tool_config: {
      type: "webhook",
      name: spec.name,
      description: spec.description,
      response_timeout_secs: tuning.response_timeout_secs ?? DEFAULT_RESPONSE_TIMEOUT_SECS,
      execution_mode: tuning.execution_mode ?? "immediate",
      api_schema: {
        url: routeUrl(options.apiUrl, spec.path),
        method: "POST",
        content_type: "application/json",
        request_headers: {
          [TOOL_SECRET_HEADER]: {
            secret_id: options.secretId ?? `<secret_id of the workspace secret ${options.secretName}>`,
          },
        },
        request_body_schema: { type: "object", required, properties },
      },
    },
  };
};

/** The tools, webhook and settings for a service at `apiUrl`, in ElevenLabs' API shapes. */
export const buildElevenLabsSetup = (options: SetupOptions): ElevenLabsSetup => {
  const toolPath = routeNamed("call-tool").path;
  const tools = options.tools.map((tool) =>
    webhookTool(
      options,
      {
        name: tool.name,
        description: tool.description,
        path: toolPath.replace("{toolName}", tool.name),
        parameters: tool.parameters ?? {},
      },
      tool,
    ),
  );
  tools.push(
    webhookTool(
      options,
      {
        name: "get_task_result",
        description:
          "Gets the results of the tasks started in this conversation. Call it when the user asks about a task you started, or a little while after starting one.",
        path: routeNamed("get-task-result").path,
        parameters: {
          task_id: { type: "string", description: "The taskId of one task, to ask about only that one." },
        },
      },
      {},
    ),
  );
  return {
    workspace_secret: { name: options.secretName },
    tools,
    post_call_webhook: {
      settings: {
        auth_type: "hmac",
        name: options.webhookName ?? "elevenlabs-agent-sessions post-call",
        webhook_url: routeUrl(options.apiUrl, routeNamed("post-call-webhook").path),
      },
    },
    convai_settings: {
      webhooks: {
        post_call_webhook_id: options.webhookId ?? "<webhook_id of the post-call webhook>",
        events: [...POST_CALL_EVENTS],
      },
    },
    ...(options.agentId
      ? { agent: { agent_id: options.agentId, tool_names: tools.map((t) => t.tool_config.name) } }
      : {}),
  };
};

/** An ElevenLabs API call that failed: method, path and status, never the key. */
export class ElevenLabsApiError extends Error {
  override readonly name = "ElevenLabsApiError";
}

/**
 * What ElevenLabs said was wrong, without echoing the request: validation errors carry the input
 * (which may be the tool secret), so only their messages and locations are kept.
 */
export const errorDetail = (text: string): string => {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return "";
  }
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (typeof detail === "string") return `: ${detail.slice(0, 200)}`;
  if (detail && typeof detail === "object" && !Array.isArray(detail)) {
    const message = (detail as { message?: unknown }).message;
    return typeof message === "string" ? `: ${message.slice(0, 200)}` : "";
  }
  if (Array.isArray(detail)) {
    const parts = detail
      .slice(0, 3)
      .map((d: { loc?: unknown; msg?: unknown }) =>
        [Array.isArray(d.loc) ? d.loc.join(".") : "", typeof d.msg === "string" ? d.msg : ""]
          .filter(Boolean)
          .join(" "),
      );
    return `: ${parts.join("; ").slice(0, 300)}`;
  }
  return "";
};

export interface ApplyOptions {
  readonly apiKey: string;
  /** @default https://api.elevenlabs.io */
  readonly baseUrl?: string;
  /** The value of the stage's tool secret, stored as the workspace secret. */
  readonly toolSecret: string;
  /** Where a newly created webhook's HMAC secret is written (mode 600); it is never printed. */
  readonly webhookSecretFile: string;
  /** The command that puts that file into the stage's webhook secret, for the printed hint. */
  readonly webhookSecretCommand: string;
  readonly fetchImpl?: typeof fetch;
  readonly log: (line: string) => void;
}

/**
 * Creates or updates everything in `setup` through ElevenLabs' API, idempotently: the workspace
 * secret by name, tools by name, the post-call webhook by URL. Returns the ids it used.
 */
export const applyElevenLabsSetup = async (
  options: SetupOptions,
  apply: ApplyOptions,
): Promise<{ secretId: string; toolIds: Record<string, string>; webhookId: string }> => {
  const base = (apply.baseUrl ?? DEFAULT_ELEVENLABS_API_BASE_URL).replace(/\/+$/, "");
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let response: Response;
    try {
      response = await (apply.fetchImpl ?? fetch)(`${base}${path}`, {
        method,
        headers: {
          "xi-api-key": apply.apiKey,
          accept: "application/json",
          "content-type": "application/json",
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
        redirect: "error",
      });
    } catch (error) {
      throw new ElevenLabsApiError(
        `${method} ${base}${path.split("?")[0]} failed: ${error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error)}.`,
      );
    }
    const text = await response.text();
    if (!response.ok) {
      const reason = response.status === 401 ? " (check ELEVENLABS_API_KEY)" : errorDetail(text);
      throw new ElevenLabsApiError(
        `${method} ${path.split("?")[0]} answered HTTP ${response.status}${reason}`,
      );
    }
    return (text ? JSON.parse(text) : {}) as T;
  };

  // 1. The tool secret as a workspace secret, so the tools reference it and never hold it.
  const draft = buildElevenLabsSetup(options);
  const secretName = draft.workspace_secret.name;
  const secrets = await call<{ secrets?: { secret_id: string; name: string }[] }>(
    "GET",
    `/v1/convai/secrets?search=${encodeURIComponent(secretName)}`,
  );
  const existingSecret = secrets.secrets?.find((s) => s.name === secretName);
  let secretId: string;
  if (existingSecret) {
    await call("PATCH", `/v1/convai/secrets/${encodeURIComponent(existingSecret.secret_id)}`, {
      type: "update",
      name: secretName,
      value: apply.toolSecret,
    });
    secretId = existingSecret.secret_id;
    apply.log(`workspace secret  ${secretName}: updated (${secretId})`);
  } else {
    const created = await call<{ secret_id: string }>("POST", "/v1/convai/secrets", {
      type: "new",
      name: secretName,
      value: apply.toolSecret,
    });
    secretId = created.secret_id;
    apply.log(`workspace secret  ${secretName}: created (${secretId})`);
  }

  // 2. The post-call webhook, matched by URL (its HMAC secret is shown only when created).
  const webhookSettings = draft.post_call_webhook.settings;
  const webhooks = await call<{ webhooks?: { webhook_id: string; webhook_url: string }[] }>(
    "GET",
    "/v1/workspace/webhooks",
  );
  const existingWebhook = webhooks.webhooks?.find((w) => w.webhook_url === webhookSettings.webhook_url);
  let webhookId: string;
  if (existingWebhook) {
    webhookId = existingWebhook.webhook_id;
    apply.log(
      `post-call webhook ${webhookSettings.webhook_url}: exists (${webhookId}); its secret stays as it is`,
    );
  } else {
    const created = await call<{ webhook_id: string; webhook_secret?: string }>(
      "POST",
      "/v1/workspace/webhooks",
      {
        settings: webhookSettings,
      },
    );
    webhookId = created.webhook_id;
    if (created.webhook_secret) {
      writeFileSync(apply.webhookSecretFile, created.webhook_secret, { mode: 0o600 });
      chmodSync(apply.webhookSecretFile, 0o600);
      apply.log(
        `post-call webhook ${webhookSettings.webhook_url}: created (${webhookId}); its HMAC secret is in ${apply.webhookSecretFile}: ${apply.webhookSecretCommand}, then delete the file`,
      );
    } else {
      apply.log(
        `post-call webhook ${webhookSettings.webhook_url}: created (${webhookId}); ElevenLabs returned no secret`,
      );
    }
  }

  // 3. The tools, by name, now that the secret id is known.
  const setup = buildElevenLabsSetup({ ...options, secretId, webhookId });
  const toolIds: Record<string, string> = {};
  for (const tool of setup.tools) {
    const name = tool.tool_config.name;
    const found = await call<{ tools?: { id: string; tool_config?: { name?: string } }[] }>(
      "GET",
      `/v1/convai/tools?search=${encodeURIComponent(name)}&page_size=100`,
    );
    const existing = found.tools?.find((t) => t.tool_config?.name === name);
    if (existing) {
      await call("PATCH", `/v1/convai/tools/${encodeURIComponent(existing.id)}`, tool);
      toolIds[name] = existing.id;
      apply.log(
        `tool              ${name}: updated (${existing.id}) POST ${tool.tool_config.api_schema.url}`,
      );
    } else {
      const created = await call<{ id: string }>("POST", "/v1/convai/tools", tool);
      toolIds[name] = created.id;
      apply.log(`tool              ${name}: created (${created.id}) POST ${tool.tool_config.api_schema.url}`);
    }
  }

  // 4. The workspace sends post-call events to the webhook.
  await call("PATCH", "/v1/convai/settings", setup.convai_settings);
  apply.log(`workspace settings post-call webhook ${webhookId}, events ${POST_CALL_EVENTS.join(", ")}`);

  // 5. The agent uses the tools (its other tools stay).
  if (options.agentId) {
    const path = `/v1/convai/agents/${encodeURIComponent(options.agentId)}`;
    const agent = await call<{ conversation_config?: { agent?: { prompt?: { tool_ids?: string[] } } } }>(
      "GET",
      path,
    );
    const current = agent.conversation_config?.agent?.prompt?.tool_ids ?? [];
    const toolIdList = [...new Set([...current, ...Object.values(toolIds)])];
    await call("PATCH", path, { conversation_config: { agent: { prompt: { tool_ids: toolIdList } } } });
    apply.log(`agent             ${options.agentId}: ${toolIdList.length} tool(s) attached`);
  }
  return { secretId, toolIds, webhookId };
};

const USAGE = `Usage: npm run elevenlabs:config -- --url <ApiUrl> [--agent <agentId>] [--apply] [--stage <stage>]

Prints the ElevenLabs server tools and post-call webhook settings for the service at --url (the
stack's ApiUrl output, as it is). With --apply and ELEVENLABS_API_KEY, creates or updates them.

  --url <ApiUrl>        the service's base URL
  --agent <agentId>     also attach the tools to this agent
  --apply               create/update through ElevenLabs' API (ELEVENLABS_API_BASE_URL to change it)
  --stage <stage>       read the tool secret from Secrets Manager (elevenlabs-agent-sessions/<stage>/tool-secret);
                        without it, --apply takes TOOL_SECRET from the environment
  --region <region>     AWS region of the stage (default: AWS_REGION / your profile)
  --tools <file>        the tools file (default elevenlabs/tools.json)
  --webhook-secret-file <file>  where a new webhook's HMAC secret goes (default webhook-secret.txt)`;

/** The CLI: returns the exit code; `out` gets the result, `err` one line on failure. */
export const runElevenLabsConfig = async (
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: { out: (line: string) => void; err: (line: string) => void; fetchImpl?: typeof fetch },
): Promise<number> => {
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        url: { type: "string" },
        agent: { type: "string" },
        apply: { type: "boolean", default: false },
        stage: { type: "string" },
        region: { type: "string" },
        tools: { type: "string" },
        "webhook-secret-file": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const apiUrl = normalizeApiUrl(values.url ?? "");
    if (values.agent !== undefined && !ID_PATTERN.test(values.agent))
      throw new ElevenLabsConfigError(`--agent must be an ElevenLabs agent id, not "${values.agent}".`);
    const toolsFile = resolve(values.tools ?? DEFAULT_TOOLS_FILE);
    let toolsText: string;
    try {
      toolsText = readFileSync(toolsFile, "utf8");
    } catch {
      throw new ElevenLabsConfigError(`The tools file ${toolsFile} cannot be read.`);
    }
    const stage = values.stage;
    const options: SetupOptions = {
      apiUrl,
      tools: parseToolsFile(toolsText, toolsFile),
      secretName: `elevenlabs-agent-sessions-${stage ?? "local"}-tool-secret`,
      ...(values.agent ? { agentId: values.agent } : {}),
    };
    if (!values.apply) {
      io.out(JSON.stringify(buildElevenLabsSetup(options), null, 2));
      return 0;
    }
    const apiKey = env.ELEVENLABS_API_KEY?.trim();
    if (!apiKey)
      throw new ElevenLabsConfigError(
        "--apply needs ELEVENLABS_API_KEY (an ElevenLabs API key of the workspace).",
      );
    const toolSecret = stage
      ? (await readStageSecrets(stage, ["tool-secret"], values.region))["tool-secret"]
      : env.TOOL_SECRET?.trim();
    if (!toolSecret)
      throw new ElevenLabsConfigError(
        "--apply needs the tool secret: --stage <stage> reads it from Secrets Manager, or set TOOL_SECRET.",
      );
    const baseUrl = env.ELEVENLABS_API_BASE_URL?.trim() || DEFAULT_ELEVENLABS_API_BASE_URL;
    if (!/^https?:\/\/\S+$/.test(baseUrl))
      throw new ElevenLabsConfigError(`ELEVENLABS_API_BASE_URL must be an http(s) URL, not "${baseUrl}".`);
    const webhookSecretFile = resolve(values["webhook-secret-file"] ?? "webhook-secret.txt");
    await applyElevenLabsSetup(options, {
      apiKey,
      baseUrl,
      toolSecret,
      webhookSecretFile,
      webhookSecretCommand: `aws secretsmanager put-secret-value --secret-id ${stageSecretId(stage ?? "<stage>", "webhook-secret")} --secret-string file://${webhookSecretFile}`,
      log: io.out,
      ...(io.fetchImpl ? { fetchImpl: io.fetchImpl } : {}),
    });
    io.out(`Done: ElevenLabs is set up for ${apiUrl}.`);
    return 0;
  } catch (error) {
    const known =
      error instanceof ElevenLabsConfigError ||
      error instanceof ElevenLabsApiError ||
      error instanceof ApiUrlError ||
      error instanceof StageSecretError ||
      isParseArgsError(error);
    io.err(`npm run elevenlabs:config: ${known ? (error as Error).message : `failed: ${String(error)}`}`);
    return 1;
  }
};

runIfMain(import.meta.url, runElevenLabsConfig);
