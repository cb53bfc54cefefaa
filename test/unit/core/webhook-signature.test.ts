import { ElevenLabsClient } from "@elevenlabs/elevenlabs-js";
import { describe, expect, it } from "vitest";
import {
  SIGNATURE_MAX_AGE_MS,
  SIGNATURE_MAX_FUTURE_MS,
  verifyWebhookSignature,
} from "../../../functions/core/webhook-signature.js";
import { signature, WEBHOOK_SECRET } from "../../support/post-call-fixtures.js";

const NOW = Date.parse("2026-11-27T10:00:00.000Z");
const T = Math.floor(NOW / 1000);
const BODY = '{"type":"post_call_audio","event_timestamp":1,"data":{"conversation_id":"abc"}}';
const verify = (body: string | Buffer, header: string | undefined, nowMs = NOW, secret = WEBHOOK_SECRET) =>
  verifyWebhookSignature(Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8"), header, secret, nowMs);
const hexOf = (header: string) => header.slice(header.indexOf("v0=") + 3);

describe("verifyWebhookSignature", () => {
  it("accepts the researched test vector (computed with node crypto and python hmac)", () => {
    const body =
      '{"type":"post_call_audio","event_timestamp":1739537319,"data":{"agent_id":"xyz","conversation_id":"abc","full_audio":"AAAA"}}';
    const header = "t=1739537297,v0=bcbdc99a82f7a90d98ec57122c0580ed3315c116a1a6f1a8947b37db974f0c5a";
    expect(verify(body, header, 1_739_537_320_000, "wsec_test_secret")).toEqual({
      valid: true,
      timestampMs: 1_739_537_297_000,
      matched: "current",
    });
  });

  it("accepts a signature made with the documented scheme", () => {
    expect(verify(BODY, signature(BODY, T))).toEqual({
      valid: true,
      timestampMs: T * 1000,
      matched: "current",
    });
  });

  it("verifies the exact bytes: multi-byte UTF-8 signs and verifies as sent", () => {
    const body = Buffer.from('{"text":"Grüße, 東京 🎧"}', "utf8");
    expect(verify(body, signature(body, T)).valid).toBe(true);
  });

  it("verifies the bytes as sent, whitespace included, and rejects them re-serialized after parsing", () => {
    const sent = '{ "type": "post_call_audio",  "data": {} }\n';
    const reserialized = JSON.stringify(JSON.parse(sent));
    expect(verify(sent, signature(sent, T)).valid).toBe(true);
    expect(verify(reserialized, signature(sent, T))).toEqual({ valid: false, reason: "mismatch" });
  });

  it.each([
    ["a wrong secret", BODY, signature(BODY, T, "wsec_other_secret"), "mismatch"],
    ["a body altered by one character", BODY.replace("abc", "abd"), signature(BODY, T), "mismatch"],
    ["a missing header", BODY, undefined, "missing_header"],
    ["an empty header", BODY, "", "missing_header"],
    ["a header without v0", BODY, `t=${T}`, "malformed_header"],
    ["a header without t", BODY, `v0=${hexOf(signature(BODY, T))}`, "malformed_header"],
    [
      "a space after the comma (the SDK does not trim)",
      BODY,
      signature(BODY, T).replace(",", ", "),
      "malformed_header",
    ],
    ["a non-numeric timestamp", BODY, signature(BODY, "abc"), "malformed_header"],
    ["uppercase hex", BODY, `t=${T},v0=${hexOf(signature(BODY, T)).toUpperCase()}`, "mismatch"],
    ["a truncated digest", BODY, signature(BODY, T).slice(0, -2), "mismatch"],
  ])("rejects %s", (_label, body, header, reason) => {
    expect(verify(body, header)).toEqual({ valid: false, reason });
  });

  it("accepts a timestamp exactly 30 minutes old and rejects one a second older", () => {
    const edge = NOW - SIGNATURE_MAX_AGE_MS;
    expect(verify(BODY, signature(BODY, edge / 1000)).valid).toBe(true);
    expect(verify(BODY, signature(BODY, edge / 1000 - 1))).toEqual({
      valid: false,
      reason: "timestamp_too_old",
    });
  });

  it("accepts a timestamp 5 minutes ahead (clock skew) and rejects one further in the future", () => {
    const edge = NOW + SIGNATURE_MAX_FUTURE_MS;
    expect(verify(BODY, signature(BODY, edge / 1000)).valid).toBe(true);
    expect(verify(BODY, signature(BODY, edge / 1000 + 1))).toEqual({
      valid: false,
      reason: "timestamp_in_future",
    });
  });

  it("parses like the SDK: parts in any order, the first t= and v0= win, unknown parts are ignored", () => {
    const good = hexOf(signature(BODY, T));
    expect(verify(BODY, `v0=${good},t=${T}`).valid).toBe(true);
    expect(verify(BODY, `t=${T},v0=${good},v1=ignored`).valid).toBe(true);
    expect(verify(BODY, `t=${T},v0=${"0".repeat(64)},v0=${good}`).valid).toBe(false);
  });

  it("refuses to verify with an empty secret (a deploy error, never a pass)", () => {
    expect(() => verify(BODY, signature(BODY, T, ""), NOW, "")).toThrow(/secret is empty/);
  });
});

describe("verifyWebhookSignature against the official SDK (@elevenlabs/elevenlabs-js constructEvent)", () => {
  const sdk = new ElevenLabsClient({ apiKey: "unused-in-this-test" }).webhooks;
  const sdkAccepts = (body: string, header: string, secret: string) =>
    sdk.constructEvent(body, header, secret).then(
      () => true,
      () => false,
    );

  // The SDK reads the real clock, so these cases are signed relative to it.
  const cases = (nowSecs: number) => {
    const body = '{"type":"post_call_transcription","data":{"conversation_id":"conv_1","text":"Grüße 🎧"}}';
    const good = signature(body, nowSecs);
    return [
      ["signed now", body, good, WEBHOOK_SECRET],
      ["signed 29 minutes ago", body, signature(body, nowSecs - 29 * 60), WEBHOOK_SECRET],
      ["signed 31 minutes ago", body, signature(body, nowSecs - 31 * 60), WEBHOOK_SECRET],
      ["signed 2 minutes ahead", body, signature(body, nowSecs + 120), WEBHOOK_SECRET],
      ["verified with another secret", body, good, "wsec_another"],
      ["an altered body", body.replace("conv_1", "conv_2"), good, WEBHOOK_SECRET],
      ["no v0 part", body, `t=${nowSecs}`, WEBHOOK_SECRET],
      ["no t part", body, `v0=${hexOf(good)}`, WEBHOOK_SECRET],
      ["a space after the comma", body, good.replace(",", ", "), WEBHOOK_SECRET],
      ["reversed parts", body, `v0=${hexOf(good)},t=${nowSecs}`, WEBHOOK_SECRET],
      ["uppercase hex", body, `t=${nowSecs},v0=${hexOf(good).toUpperCase()}`, WEBHOOK_SECRET],
      ["an extra part", body, `${good},v1=zzz`, WEBHOOK_SECRET],
      [
        "a second, wrong v0 first",
        body,
        `t=${nowSecs},v0=${"0".repeat(64)},${good.split(",")[1]}`,
        WEBHOOK_SECRET,
      ],
    ] as const;
  };

  it("accepts exactly what the SDK accepts and rejects what it rejects", async () => {
    const nowMs = Date.now();
    const rows = cases(Math.floor(nowMs / 1000));
    const verdicts = await Promise.all(
      rows.map(async ([label, body, header, secret]) => ({
        label,
        sdk: await sdkAccepts(body, header, secret),
        ours: verifyWebhookSignature(Buffer.from(body, "utf8"), header, secret, nowMs).valid,
      })),
    );
    for (const v of verdicts) expect(v, v.label).toMatchObject({ ours: v.sdk });
    // Both sides of the comparison are exercised, so the test cannot pass vacuously.
    expect(verdicts.filter((v) => v.sdk).length).toBeGreaterThanOrEqual(4);
    expect(verdicts.filter((v) => !v.sdk).length).toBeGreaterThanOrEqual(6);
  });

  it("is stricter than the SDK only where documented: far-future and non-numeric timestamps", async () => {
    const nowMs = Date.now();
    const nowSecs = Math.floor(nowMs / 1000);
    const body = '{"type":"post_call_audio","data":{}}';
    for (const header of [signature(body, nowSecs + 3600), signature(body, `${nowSecs}.5`)]) {
      expect(await sdkAccepts(body, header, WEBHOOK_SECRET)).toBe(true);
      expect(verifyWebhookSignature(Buffer.from(body), header, WEBHOOK_SECRET, nowMs).valid).toBe(false);
    }
  });
});
