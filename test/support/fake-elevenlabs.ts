import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the fake ElevenLabs API received. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly apiKey: string | undefined;
  readonly body: unknown;
}

export interface FakeElevenLabs {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Workspace state as the fake API holds it (wire format). */
  readonly state: {
    secrets: { secret_id: string; name: string; value: string }[];
    tools: { id: string; tool_config: Record<string, unknown> }[];
    webhooks: { webhook_id: string; webhook_url: string; name: string }[];
    settings: Record<string, unknown>;
    agents: Record<string, { conversation_config: { agent: { prompt: { tool_ids: string[] } } } }>;
  };
  close(): Promise<void>;
}

/**
 * The parts of ElevenLabs' API that `npm run elevenlabs:config -- --apply` uses, on 127.0.0.1,
 * keeping state between calls and recording every request. Only `apiKey` is accepted.
 */
export const startFakeElevenLabs = async (apiKey: string): Promise<FakeElevenLabs> => {
  const requests: RecordedRequest[] = [];
  const state: FakeElevenLabs["state"] = {
    secrets: [],
    tools: [],
    webhooks: [],
    settings: {},
    agents: { agent_1: { conversation_config: { agent: { prompt: { tool_ids: ["tool_existing"] } } } } },
  };
  let next = 1;
  const id = (prefix: string) => `${prefix}_${next++}`;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const text = Buffer.concat(chunks).toString("utf8");
      const body: unknown = text ? JSON.parse(text) : undefined;
      const key = req.headers["xi-api-key"] as string | undefined;
      requests.push({ method: req.method ?? "", path: url.pathname + url.search, apiKey: key, body });
      const send = (status: number, value: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      if (key !== apiKey) return send(401, { detail: { status: "invalid_api_key" } });
      const b = body as Record<string, unknown>;
      const route = `${req.method} ${url.pathname}`;
      const secretMatch = /^PATCH \/v1\/convai\/secrets\/([^/]+)$/.exec(route);
      const toolMatch = /^PATCH \/v1\/convai\/tools\/([^/]+)$/.exec(route);
      const agentMatch = /^(GET|PATCH) \/v1\/convai\/agents\/([^/]+)$/.exec(route);
      if (route === "GET /v1/convai/secrets") {
        const search = url.searchParams.get("search") ?? "";
        return send(200, {
          secrets: state.secrets
            .filter((s) => s.name.startsWith(search))
            .map((s) => ({ type: "stored", secret_id: s.secret_id, name: s.name, used_by: {} })),
        });
      }
      if (route === "POST /v1/convai/secrets") {
        const secret = { secret_id: id("sec"), name: String(b.name), value: String(b.value) };
        state.secrets.push(secret);
        return send(200, { type: "stored", secret_id: secret.secret_id, name: secret.name });
      }
      if (secretMatch) {
        const secret = state.secrets.find((s) => s.secret_id === secretMatch[1]);
        if (!secret) return send(404, { detail: "not found" });
        secret.value = String(b.value);
        return send(200, { type: "stored", secret_id: secret.secret_id, name: secret.name });
      }
      if (route === "GET /v1/convai/tools") {
        const search = url.searchParams.get("search") ?? "";
        return send(200, {
          tools: state.tools.filter((t) => String(t.tool_config.name).startsWith(search)),
          has_more: false,
        });
      }
      if (route === "POST /v1/convai/tools") {
        const tool = { id: id("tool"), tool_config: b.tool_config as Record<string, unknown> };
        state.tools.push(tool);
        return send(200, tool);
      }
      if (toolMatch) {
        const tool = state.tools.find((t) => t.id === toolMatch[1]);
        if (!tool) return send(404, { detail: "not found" });
        tool.tool_config = b.tool_config as Record<string, unknown>;
        return send(200, tool);
      }
      if (route === "GET /v1/workspace/webhooks") return send(200, { webhooks: state.webhooks });
      if (route === "POST /v1/workspace/webhooks") {
        const settings = b.settings as { webhook_url: string; name: string };
        const webhook = { webhook_id: id("wh"), webhook_url: settings.webhook_url, name: settings.name };
        state.webhooks.push(webhook);
        return send(200, {
          webhook_id: webhook.webhook_id,
          webhook_secret: `wsec_fake_${webhook.webhook_id}`,
        });
      }
      if (route === "PATCH /v1/convai/settings") {
        state.settings = { ...state.settings, ...b };
        return send(200, state.settings);
      }
      if (agentMatch) {
        const agent = state.agents[agentMatch[2] ?? ""];
        if (!agent) return send(404, { detail: "agent not found" });
        if (agentMatch[1] === "PATCH") {
          const ids = (b as { conversation_config: { agent: { prompt: { tool_ids: string[] } } } })
            .conversation_config.agent.prompt.tool_ids;
          agent.conversation_config.agent.prompt.tool_ids = ids;
        }
        return send(200, { agent_id: agentMatch[2], ...agent });
      }
      return send(404, { detail: `no fake for ${route}` });
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    state,
    close: () => new Promise((done) => server.close(() => done())),
  };
};
