import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { NOTIFY_SIGNATURE_HEADER } from "../functions/core/notifier.js";
import { parseObject } from "./demo-http.js";

// The app's notify receiver in the demo: where the service pushes live results, checked as an app would.

/** A push the receiver got. */
export interface Push {
  /** `performance.now()` when it arrived. */
  readonly arrivedAt: number;
  /** The receiver's answer: 204 verified, 401 not. */
  readonly status: number;
  /** Why the signature did not verify; absent when it did. */
  readonly problem?: string;
  readonly body: Record<string, unknown>;
}

export interface NotifyReceiver {
  readonly url: string;
  /** The first push for this task (even one that came earlier), or undefined after `timeoutMs` without one. */
  waitFor(taskId: string, timeoutMs: number): Promise<Push | undefined>;
  close(): Promise<void>;
}

/**
 * Verifies `x-signature: t=<unix secs>,v0=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` as an app
 * would: written out here rather than imported, so the demo also checks the service's signing.
 */
export const verifyPushSignature = (
  rawBody: Buffer,
  header: string | undefined,
  secret: string,
  nowMs: number,
): string | undefined => {
  if (!header) return `no ${NOTIFY_SIGNATURE_HEADER} header`;
  const parts = header.split(",");
  const t = parts.find((p) => p.startsWith("t="))?.slice(2) ?? "";
  const v0 = parts.find((p) => p.startsWith("v0="))?.slice(3) ?? "";
  if (!/^\d{1,12}$/.test(t) || !/^[0-9a-f]{64}$/.test(v0))
    return `malformed ${NOTIFY_SIGNATURE_HEADER} header`;
  // Like the webhook's check: a replayed push older than 5 minutes is refused.
  if (Math.abs(nowMs - Number(t) * 1000) > 5 * 60_000) return "signature timestamp too far from now";
  const expected = createHmac("sha256", secret).update(`${t}.`).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(v0, "hex"))
    ? undefined
    : "signature does not match (is NOTIFY_SIGNING_SECRET the same for the service and the demo?)";
};

/** Starts the receiver on a free port of 127.0.0.1, verifying each push with `secret`. */
export const startReceiver = async (secret: string): Promise<NotifyReceiver> => {
  const pushes: Push[] = [];
  const waiters = new Set<() => void>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const header = req.headers[NOTIFY_SIGNATURE_HEADER];
      const problem = verifyPushSignature(
        raw,
        Array.isArray(header) ? header[0] : header,
        secret,
        Date.now(),
      );
      const status = problem ? 401 : 204;
      pushes.push({
        arrivedAt: performance.now(),
        status,
        body: parseObject(raw.toString("utf8")),
        ...(problem ? { problem } : {}),
      });
      res.writeHead(status).end();
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => done());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/notify`,
    waitFor: (taskId, timeoutMs) =>
      new Promise((done) => {
        const find = () => pushes.find((p) => p.body.taskId === taskId);
        const check = () => {
          const push = find();
          if (!push) return;
          clearTimeout(timer);
          waiters.delete(check);
          done(push);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          done(find());
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () =>
      new Promise((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
};
