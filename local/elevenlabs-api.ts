/**
 * `--apply`: creates or updates the ElevenLabs setup through ElevenLabs' API, idempotently (the
 * workspace secret by name, tools by name, the post-call webhook by URL), and attaches the tools
 * to an agent. Errors name the method, path and status, never the key or the request's values.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { DEFAULT_ELEVENLABS_API_BASE_URL } from "../functions/core/signed-url-api.js";
import {
  buildElevenLabsSetup,
  type ElevenLabsSetup,
  POST_CALL_EVENTS,
  type SetupOptions,
  type ToolRequest,
} from "./elevenlabs-setup.js";

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

/** One ElevenLabs API call: JSON in and out, the key in `xi-api-key`; failures name method, path, status. */
type Call = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/** The API client `--apply` uses: 30 s per request, no redirects, errors as {@link ElevenLabsApiError}. */
export const elevenLabsCall = (apply: Pick<ApplyOptions, "apiKey" | "baseUrl" | "fetchImpl">): Call => {
  const base = (apply.baseUrl ?? DEFAULT_ELEVENLABS_API_BASE_URL).replace(/\/+$/, "");
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
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
};

/** 1. The tool secret as a workspace secret, so the tools reference it and never hold it. */
const upsertWorkspaceSecret = async (
  call: Call,
  secretName: string,
  apply: ApplyOptions,
): Promise<string> => {
  const secrets = await call<{ secrets?: { secret_id: string; name: string }[] }>(
    "GET",
    `/v1/convai/secrets?search=${encodeURIComponent(secretName)}`,
  );
  const existingSecret = secrets.secrets?.find((s) => s.name === secretName);
  if (existingSecret) {
    await call("PATCH", `/v1/convai/secrets/${encodeURIComponent(existingSecret.secret_id)}`, {
      type: "update",
      name: secretName,
      value: apply.toolSecret,
    });
    apply.log(`workspace secret  ${secretName}: updated (${existingSecret.secret_id})`);
    return existingSecret.secret_id;
  }
  const created = await call<{ secret_id: string }>("POST", "/v1/convai/secrets", {
    type: "new",
    name: secretName,
    value: apply.toolSecret,
  });
  apply.log(`workspace secret  ${secretName}: created (${created.secret_id})`);
  return created.secret_id;
};

/** 2. The post-call webhook, matched by URL (its HMAC secret is shown only when created). */
const ensurePostCallWebhook = async (
  call: Call,
  webhookSettings: ElevenLabsSetup["post_call_webhook"]["settings"],
  apply: ApplyOptions,
): Promise<string> => {
  const webhooks = await call<{ webhooks?: { webhook_id: string; webhook_url: string }[] }>(
    "GET",
    "/v1/workspace/webhooks",
  );
  const existingWebhook = webhooks.webhooks?.find((w) => w.webhook_url === webhookSettings.webhook_url);
  if (existingWebhook) {
    apply.log(
      `post-call webhook ${webhookSettings.webhook_url}: exists (${existingWebhook.webhook_id}); its secret stays as it is`,
    );
    return existingWebhook.webhook_id;
  }
  const created = await call<{ webhook_id: string; webhook_secret?: string }>(
    "POST",
    "/v1/workspace/webhooks",
    {
      settings: webhookSettings,
    },
  );
  const webhookId = created.webhook_id;
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
  return webhookId;
};

/** 3. The tools, by name, once the secret id is known. Returns their ids by name. */
const upsertTools = async (
  call: Call,
  tools: readonly ToolRequest[],
  apply: ApplyOptions,
): Promise<Record<string, string>> => {
  const toolIds: Record<string, string> = {};
  for (const tool of tools) {
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
  return toolIds;
};

/** 5. The agent uses the tools (its other tools stay). */
const attachTools = async (call: Call, agentId: string, toolIds: readonly string[], apply: ApplyOptions) => {
  const path = `/v1/convai/agents/${encodeURIComponent(agentId)}`;
  const agent = await call<{ conversation_config?: { agent?: { prompt?: { tool_ids?: string[] } } } }>(
    "GET",
    path,
  );
  const current = agent.conversation_config?.agent?.prompt?.tool_ids ?? [];
  const toolIdList = [...new Set([...current, ...toolIds])];
  await call("PATCH", path, { conversation_config: { agent: { prompt: { tool_ids: toolIdList } } } });
  apply.log(`agent             ${agentId}: ${toolIdList.length} tool(s) attached`);
};

/**
 * Creates or updates everything in `setup` through ElevenLabs' API, idempotently: the workspace
 * secret by name, tools by name, the post-call webhook by URL. Returns the ids it used.
 */
export const applyElevenLabsSetup = async (
  options: SetupOptions,
  apply: ApplyOptions,
): Promise<{ secretId: string; toolIds: Record<string, string>; webhookId: string }> => {
  const call = elevenLabsCall(apply);
  const draft = buildElevenLabsSetup(options);
  const secretId = await upsertWorkspaceSecret(call, draft.workspace_secret.name, apply);
  const webhookId = await ensurePostCallWebhook(call, draft.post_call_webhook.settings, apply);
  const setup = buildElevenLabsSetup({ ...options, secretId, webhookId });
  const toolIds = await upsertTools(call, setup.tools, apply);
  // 4. The workspace sends post-call events to the webhook.
  await call("PATCH", "/v1/convai/settings", setup.convai_settings);
  apply.log(`workspace settings post-call webhook ${webhookId}, events ${POST_CALL_EVENTS.join(", ")}`);
  if (options.agentId) await attachTools(call, options.agentId, Object.values(toolIds), apply);
  return { secretId, toolIds, webhookId };
};
