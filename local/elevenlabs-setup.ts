/**
 * What the ElevenLabs side of a deploy is, in ElevenLabs' own API shapes: one webhook tool per
 * tools-file entry plus `get_task_result`, the workspace secret the tools' header reads, the
 * post-call webhook and the workspace settings that send post-call events to it. Pure: no I/O.
 */
import type * as z from "zod/mini";
import { routeNamed } from "../functions/core/routes.js";
import { routeUrl } from "./api-url.js";
import type { parameterSchema, ToolSpec } from "./elevenlabs-tools.js";

/** The body property ElevenLabs fills from the conversation, never the LLM. */
const CONVERSATION_ID_PROPERTY = {
  type: "string",
  dynamic_variable: "system__conversation_id",
} as const;

/** Post-call events this service stores; audio is left off (not stored, and too large). */
export const POST_CALL_EVENTS = ["transcript", "call_initiation_failure"] as const;

/** Within the service's own answers (a few hundred ms) and below ElevenLabs' 20 s default. */
const DEFAULT_RESPONSE_TIMEOUT_SECS = 20;

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
