import { createHmac, timingSafeEqual } from "node:crypto";
import type { SecretVersions } from "./secrets.js";

/** The header ElevenLabs signs post-call webhooks with, as API Gateway delivers it (lowercased). */
export const SIGNATURE_HEADER = "elevenlabs-signature";

/** ElevenLabs' own tolerance (SDK and docs): a signature older than 30 minutes is rejected. */
export const SIGNATURE_MAX_AGE_MS = 30 * 60 * 1000;

/**
 * How far in the future a timestamp may be. The SDK has no future bound; we add one so a
 * leaked signature cannot be pre-dated to stay valid for longer than 30 minutes.
 */
export const SIGNATURE_MAX_FUTURE_MS = 5 * 60 * 1000;

/** Why a signature was rejected: logged (never the header or the secret), not sent. */
export type SignatureProblem =
  | "missing_header"
  | "malformed_header"
  | "timestamp_too_old"
  | "timestamp_in_future"
  | "mismatch";

export type SignatureCheck =
  | { readonly valid: true; readonly timestampMs: number; readonly matched: "current" | "previous" }
  | { readonly valid: false; readonly reason: SignatureProblem };

const UNIX_SECONDS = /^\d{1,12}$/;
const HEX_SHA256 = /^[0-9a-f]{64}$/;

/**
 * Verifies `ElevenLabs-Signature: t=<unix seconds>,v0=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
 * over the exact bytes received.
 *
 * Parsing follows the official SDK's `webhooks.constructEvent` (split on ",", no trimming, first
 * `t=` and first `v0=` part win; the secret is used as UTF-8 bytes). On purpose it is stricter
 * than the SDK: `t` must be whole seconds, a timestamp more than {@link SIGNATURE_MAX_FUTURE_MS}
 * ahead is rejected, and the digests are compared in constant time.
 */
export const verifyWebhookSignature = (
  rawBody: Buffer,
  header: string | undefined,
  secret: string | SecretVersions,
  nowMs: number,
): SignatureCheck => {
  const versions = typeof secret === "string" ? { current: secret } : secret;
  // An empty secret would make every forged signature computable: a deploy error, not a 401.
  if (versions.current.length === 0) throw new Error("The webhook secret is empty");
  if (!header) return { valid: false, reason: "missing_header" };
  const parts = header.split(",");
  const timestamp = parts.find((p) => p.startsWith("t="))?.slice(2);
  const signature = parts.find((p) => p.startsWith("v0="))?.slice(3);
  if (!timestamp || !signature || !UNIX_SECONDS.test(timestamp)) {
    return { valid: false, reason: "malformed_header" };
  }
  const timestampMs = Number(timestamp) * 1000;
  if (timestampMs < nowMs - SIGNATURE_MAX_AGE_MS) return { valid: false, reason: "timestamp_too_old" };
  if (timestampMs > nowMs + SIGNATURE_MAX_FUTURE_MS) return { valid: false, reason: "timestamp_in_future" };
  // The SDK compares lowercase hex strings, so anything else can never match there either.
  if (!HEX_SHA256.test(signature)) return { valid: false, reason: "mismatch" };
  const given = Buffer.from(signature, "hex");
  const signedWith = (key: string) =>
    timingSafeEqual(
      given,
      createHmac("sha256", key).update(`${timestamp}.`, "utf8").update(rawBody).digest(),
    );
  // During a rotation both keys are tried, always both, so timing does not tell which matched.
  const current = signedWith(versions.current);
  const previous = versions.previous ? signedWith(versions.previous) : false;
  if (current) return { valid: true, timestampMs, matched: "current" };
  return previous ? { valid: true, timestampMs, matched: "previous" } : { valid: false, reason: "mismatch" };
};
