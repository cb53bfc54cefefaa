import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** How the fake answers one conversation: a status code, headers and a JSON body (or raw text). */
export interface FakeAnswer {
  readonly status: number;
  readonly body?: unknown;
  /** Sent as is instead of JSON (a body that is not JSON). */
  readonly raw?: string;
  readonly headers?: Record<string, string>;
  /** Wait this long before answering (timeouts). */
  readonly delayMs?: number;
}

/** One request the fake received. */
export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly conversationId: string;
  readonly apiKey: string | undefined;
}

/** A fake ElevenLabs API on 127.0.0.1: `GET /v1/convai/conversations/{id}` answered per conversation. */
export interface FakeConversationsApi {
  readonly url: string;
  readonly requests: FakeRequest[];
  /** Sets what the next requests for this conversation get (a list is used in order, the last one repeats). */
  answer(conversationId: string, ...answers: FakeAnswer[]): void;
  requestsFor(conversationId: string): FakeRequest[];
  close(): Promise<void>;
}

const PATH = /^\/v1\/convai\/conversations\/([^/?]+)$/;

/**
 * Starts a real HTTP server on a free loopback port. Unknown conversations answer 404 like
 * ElevenLabs; requests without the expected `xi-api-key` answer 401.
 */
export const startFakeConversationsApi = async (apiKey: string): Promise<FakeConversationsApi> => {
  const requests: FakeRequest[] = [];
  const scripted = new Map<string, FakeAnswer[]>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const match = PATH.exec(url.pathname);
    const conversationId = match ? decodeURIComponent(match[1] ?? "") : "";
    const key = req.headers["xi-api-key"];
    requests.push({
      method: req.method ?? "",
      path: url.pathname,
      conversationId,
      apiKey: Array.isArray(key) ? key.join(",") : key,
    });
    const send = (answer: FakeAnswer) => {
      res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      res.end(answer.raw ?? (answer.body === undefined ? "" : JSON.stringify(answer.body)));
    };
    if (req.method !== "GET" || !match) return send({ status: 404, body: { detail: "Not Found" } });
    if (key !== apiKey) return send({ status: 401, body: { detail: { status: "invalid_api_key" } } });
    const list = scripted.get(conversationId);
    const answer = list && list.length > 1 ? list.shift() : list?.[0];
    if (!answer) return send({ status: 404, body: { detail: "Conversation not found" } });
    if (answer.delayMs) setTimeout(() => send(answer), answer.delayMs);
    else send(answer);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    answer: (conversationId, ...answers) => {
      scripted.set(conversationId, [...answers]);
    },
    requestsFor: (conversationId) => requests.filter((r) => r.conversationId === conversationId),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
