import type { Clock } from "./clock.js";
import { ServiceUnavailableError, ValidationError } from "./errors.js";
import { errorBody, type HttpRequest } from "./http.js";
import { assertValidId, ID_PATTERN } from "./ids.js";
import type { Outcome } from "./outcomes.js";
import type { AppLogger } from "./powertools.js";
import type { Secrets } from "./secrets.js";

/** ElevenLabs' public API. Override with `ELEVENLABS_API_BASE_URL` (EU/US residency, tests). */
export const DEFAULT_ELEVENLABS_API_BASE_URL = "https://api.elevenlabs.io";

/** "Signed URLs are valid for 15 minutes" (ElevenLabs authentication docs). */
export const SIGNED_URL_VALIDITY_MS = 15 * 60 * 1000;

/** Well inside API Gateway's 30 s: a stuck ElevenLabs becomes our 503, not a gateway timeout. */
export const DEFAULT_SIGNED_URL_TIMEOUT_MS = 5000;

/** What the signed-URL route needs. */
export interface SignedUrlDeps {
  readonly secrets: Secrets;
  readonly now: Clock;
  readonly logger: AppLogger;
  /** @default DEFAULT_ELEVENLABS_API_BASE_URL */
  readonly apiBaseUrl?: string;
  /** @default global fetch */
  readonly fetchImpl?: typeof fetch;
  /** @default DEFAULT_SIGNED_URL_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

/** ElevenLabs' answer, or why there is none. */
type Upstream =
  | { readonly ok: true; readonly signedUrl: string; readonly conversationId?: string }
  | { readonly ok: false; readonly status: number; readonly retryAfter: string | null }
  | { readonly ok: false; readonly status: "invalid_response" };

/**
 * `GET /signed-url?agentId=<id>`: asks ElevenLabs for a signed conversation URL with the API
 * key from the secrets, so a browser can start a conversation without ever holding the key.
 * The key, and the signed URL (a credential for 15 minutes), never appear in a log line.
 */
export const issueSignedUrl = async (deps: SignedUrlDeps, request: HttpRequest): Promise<Outcome> => {
  const agentId = request.query.agentId;
  if (agentId === undefined) {
    throw new ValidationError(
      "agentId is required: GET /signed-url?agentId=<ElevenLabs agent id>.",
      ["query.agentId is required"],
      "invalid_agent_id",
    );
  }
  assertValidId(agentId, "agentId");
  // Taken before the request: ElevenLabs signs after it arrives, so this never overstates the validity.
  const issuedAtMs = deps.now();
  const upstream = await requestSignedUrl(deps, agentId, await deps.secrets.get("elevenlabsApiKey"));
  if (upstream.ok) {
    const expiresAt = new Date(issuedAtMs + SIGNED_URL_VALIDITY_MS).toISOString();
    const conversation = upstream.conversationId ? { conversationId: upstream.conversationId } : {};
    return {
      kind: "signed_url_issued",
      body: { signedUrl: upstream.signedUrl, expiresAt, agentId, ...conversation },
      log: { agentId, expiresAt, ...conversation },
    };
  }
  const { status } = upstream;
  if (status === 401 || status === 403) {
    return {
      kind: "signed_url_upstream_auth_failed",
      body: errorBody(
        "upstream_auth_failed",
        "ElevenLabs did not accept this service's API key. An operator needs to check the ElevenLabs API key secret.",
      ),
      log: { agentId, upstreamStatus: status },
    };
  }
  if (status === 429 || (typeof status === "number" && status >= 500)) {
    deps.logger.warn("ElevenLabs is busy or failing; signed URL not issued", {
      agentId,
      upstreamStatus: status,
    });
    throw new ServiceUnavailableError(
      "ElevenLabs is busy right now. Please retry shortly.",
      retryAfterSeconds("retryAfter" in upstream ? upstream.retryAfter : null),
    );
  }
  return {
    kind: "signed_url_upstream_failed",
    body: {
      ...errorBody(
        status === "invalid_response" ? "upstream_invalid_response" : "upstream_rejected",
        status === "invalid_response"
          ? "ElevenLabs answered without a signed URL."
          : `ElevenLabs refused to issue a signed URL for this agent (HTTP ${status}). Check that the agent exists in this workspace.`,
      ),
      ...(typeof status === "number" ? { upstreamStatus: status } : {}),
    },
    log: { agentId, upstreamStatus: status },
  };
};

const requestSignedUrl = async (deps: SignedUrlDeps, agentId: string, apiKey: string): Promise<Upstream> => {
  const base = (deps.apiBaseUrl ?? DEFAULT_ELEVENLABS_API_BASE_URL).replace(/\/+$/, "");
  // include_conversation_id: the answer names the conversation, so the app can register its
  // session before the browser connects.
  const url = `${base}/v1/convai/conversation/get-signed-url?agent_id=${encodeURIComponent(agentId)}&include_conversation_id=true`;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_SIGNED_URL_TIMEOUT_MS;
  let response: Response;
  try {
    response = await (deps.fetchImpl ?? fetch)(url, {
      method: "GET",
      headers: { "xi-api-key": apiKey, accept: "application/json" },
      signal: AbortSignal.timeout(timeoutMs),
      redirect: "error",
    });
  } catch (error) {
    const name = error instanceof Error ? error.name : "Error";
    deps.logger.warn("ElevenLabs could not be reached; signed URL not issued", {
      agentId,
      reason: name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : `request failed (${name})`,
    });
    throw new ServiceUnavailableError("ElevenLabs could not be reached. Please retry shortly.", 2);
  }
  if (!response.ok) {
    // The error body is not read: it is not needed, and nothing upstream says should be echoed.
    await response.body?.cancel();
    return { ok: false, status: response.status, retryAfter: response.headers.get("retry-after") };
  }
  const body: unknown = await response.json().catch(() => undefined);
  const signedUrl = (body as { signed_url?: unknown } | undefined)?.signed_url;
  if (typeof signedUrl !== "string" || !/^(wss|https):\/\/\S+$/.test(signedUrl)) {
    return { ok: false, status: "invalid_response" };
  }
  const conversationId = conversationIdOf(body, signedUrl);
  return { ok: true, signedUrl, ...(conversationId ? { conversationId } : {}) };
};

/**
 * The conversation id ElevenLabs gave with a signed URL: a `conversation_id` field of the answer,
 * else the `conversation_id` query parameter of the signed URL; only a well-formed id.
 */
export const conversationIdOf = (body: unknown, signedUrl: string): string | undefined => {
  const field = (body as { conversation_id?: unknown } | undefined)?.conversation_id;
  let fromUrl: string | null = null;
  try {
    fromUrl = new URL(signedUrl).searchParams.get("conversation_id");
  } catch {
    fromUrl = null;
  }
  const candidate = typeof field === "string" && field !== "" ? field : fromUrl;
  return candidate && ID_PATTERN.test(candidate) ? candidate : undefined;
};

/** Honours a small numeric Retry-After from upstream; otherwise a short default. */
const retryAfterSeconds = (header: string | null): number => {
  const seconds = Number(header);
  return header && Number.isInteger(seconds) && seconds > 0 && seconds <= 60 ? seconds : 2;
};
