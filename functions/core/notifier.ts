import { createHmac } from "node:crypto";

/** Header carrying the signature of a live push: `t=<unix secs>,v0=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export const NOTIFY_SIGNATURE_HEADER = "x-signature";

/** The body pushed to a session's `notifyUrl`. */
export interface LivePush {
  readonly type: "task_result";
  readonly conversationId: string;
  readonly taskId: string;
  readonly toolName: string;
  readonly result: unknown;
  readonly receivedAt: string;
}

/** Pushes live results; resolves to an error description instead of throwing. */
export interface Notifier {
  push(url: string, payload: LivePush): Promise<{ ok: true } | { ok: false; reason: string }>;
}

/** Signs like ElevenLabs does, so the receiving app can reuse one verifier. */
export const signPayload = (secret: string, body: string, unixSeconds: number): string =>
  `t=${unixSeconds},v0=${createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex")}`;

/** Signed POST with a short timeout; a slow or failing receiver never holds up the callback. */
export const httpNotifier = (
  getSecret: () => Promise<string>,
  timeoutMs: number,
  fetchImpl: typeof fetch = fetch,
  now: () => number = Date.now,
): Notifier => ({
  async push(url, payload) {
    try {
      const body = JSON.stringify(payload);
      const signature = signPayload(await getSecret(), body, Math.floor(now() / 1000));
      const response = await fetchImpl(url, {
        method: "POST",
        headers: { "content-type": "application/json", [NOTIFY_SIGNATURE_HEADER]: signature },
        body,
        signal: AbortSignal.timeout(timeoutMs),
        redirect: "error",
      });
      await response.body?.cancel();
      return response.ok ? { ok: true } : { ok: false, reason: `receiver answered HTTP ${response.status}` };
    } catch (error) {
      const name = error instanceof Error ? error.name : "Error";
      return {
        ok: false,
        reason:
          name === "TimeoutError"
            ? `no answer within ${timeoutMs} ms`
            : name === "TypeError"
              ? "could not connect to the notifyUrl"
              : `request failed (${name})`,
      };
    }
  },
});
