import { assertValidId } from "./ids.js";
import { DEFAULT_ELEVENLABS_API_BASE_URL } from "./signed-url-api.js";

/**
 * Bounded wait for one `GET /v1/convai/conversations/{id}`: a stuck ElevenLabs becomes a
 * transient failure retried by a later pass, never a Lambda timeout.
 */
export const DEFAULT_CONVERSATION_FETCH_TIMEOUT_MS = 10_000;

/** Options of {@link createConversationsClient}. */
export interface ConversationsClientOptions {
  /** Reads the API key when a request is made (Secrets Manager, cached). Never logged. */
  readonly apiKey: () => Promise<string>;
  /** @default DEFAULT_ELEVENLABS_API_BASE_URL (`ELEVENLABS_API_BASE_URL`) */
  readonly apiBaseUrl?: string;
  /** @default global fetch */
  readonly fetchImpl?: typeof fetch;
  /** @default DEFAULT_CONVERSATION_FETCH_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** For an HTTP-date Retry-After. @default Date.now */
  readonly now?: () => number;
}

/**
 * What ElevenLabs answered, as data. The body of a 200 is handed on unread beyond JSON parsing:
 * whether it is the documented shape is the reconciliation's decision, not the transport's.
 */
export type ConversationAnswer =
  | {
      readonly kind: "ok";
      readonly body: unknown;
      /** The body's exact JSON text: numbers like 1e400 survive it, not a re-serialized `body`. */
      readonly text?: string;
    }
  | { readonly kind: "not_found" }
  | { readonly kind: "auth_failed"; readonly status: number }
  | {
      readonly kind: "transient";
      /** Short, content-free: `HTTP 503`, `timeout after 10000 ms`, `network (TypeError)`. */
      readonly reason: string;
      readonly status?: number;
      /** From a Retry-After header (seconds or HTTP date), when there was one. */
      readonly retryAfterMs?: number;
    }
  | { readonly kind: "malformed"; readonly problem: string; readonly status?: number };

/** Reads one conversation (details, transcript, analysis) from ElevenLabs. */
export interface ConversationsClient {
  getConversation(conversationId: string): Promise<ConversationAnswer>;
}

/**
 * The ElevenLabs conversations API over `fetch`: `GET {base}/v1/convai/conversations/{id}` with
 * the `xi-api-key` header. Never throws for an upstream problem: every answer, timeout or network
 * failure comes back as a {@link ConversationAnswer}. Error bodies are never read (nothing
 * upstream says is echoed) and nothing here logs, so neither the key nor a transcript can leak.
 */
export const createConversationsClient = (options: ConversationsClientOptions): ConversationsClient => {
  const base = (options.apiBaseUrl ?? DEFAULT_ELEVENLABS_API_BASE_URL).replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONVERSATION_FETCH_TIMEOUT_MS;
  const fetchImpl = options.fetchImpl ?? fetch;
  const now = options.now ?? Date.now;
  return {
    async getConversation(conversationId) {
      assertValidId(conversationId);
      const url = `${base}/v1/convai/conversations/${encodeURIComponent(conversationId)}`;
      const apiKey = await options.apiKey();
      let response: Response;
      try {
        response = await fetchImpl(url, {
          method: "GET",
          headers: { "xi-api-key": apiKey, accept: "application/json" },
          signal: AbortSignal.timeout(timeoutMs),
          redirect: "error",
        });
      } catch (error) {
        const name = error instanceof Error ? error.name : "Error";
        return {
          kind: "transient",
          reason: name === "TimeoutError" ? `timeout after ${timeoutMs} ms` : `network (${name})`,
        };
      }
      const { status } = response;
      if (status === 200) {
        try {
          const text = await response.text();
          return { kind: "ok", body: JSON.parse(text) as unknown, text };
        } catch (error) {
          // A body cut off by the timeout is transient; anything else that is not JSON is malformed.
          if (error instanceof Error && error.name === "TimeoutError")
            return { kind: "transient", reason: `timeout after ${timeoutMs} ms`, status };
          return { kind: "malformed", problem: "the body is not JSON", status };
        }
      }
      await response.body?.cancel().catch(() => undefined);
      if (status === 404) return { kind: "not_found" };
      if (status === 401 || status === 403) return { kind: "auth_failed", status };
      if (status === 408 || status === 429 || status >= 500) {
        const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), now());
        return {
          kind: "transient",
          reason: `HTTP ${status}`,
          status,
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        };
      }
      // 2xx other than 200, 3xx (redirects are refused) and other 4xx: not the documented answer.
      return { kind: "malformed", problem: `unexpected HTTP ${status}`, status };
    },
  };
};

/** `Retry-After: <seconds>` or `Retry-After: <HTTP date>` as a wait in ms; undefined when absent or bad. */
export const parseRetryAfter = (header: string | null, nowMs: number): number | undefined => {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) && /[a-z]/i.test(text) ? Math.max(0, at - nowMs) : undefined;
};
