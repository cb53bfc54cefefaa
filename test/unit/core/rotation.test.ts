import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { matchSecret } from "../../../functions/core/auth.js";
import { createSecrets, parseSecretVersions } from "../../../functions/core/secrets.js";
import { verifyWebhookSignature } from "../../../functions/core/webhook-signature.js";
import { makeHandler as makeGetSession } from "../../../functions/get-session/handler.js";
import { apiEvent, bodyOf } from "../../support/events.js";
import { testDependencies } from "../../support/live-fixtures.js";
import { signature } from "../../support/post-call-fixtures.js";

describe("parseSecretVersions (the stored secret string)", () => {
  it("reads a plain string as the current value alone (secrets from before rotation)", () => {
    expect(parseSecretVersions("tok_plain")).toEqual({ current: "tok_plain" });
  });

  it("reads {current, previous} JSON", () => {
    expect(parseSecretVersions('{"current":"new","previous":"old"}')).toEqual({
      current: "new",
      previous: "old",
    });
    expect(parseSecretVersions('{"current":"new"}')).toEqual({ current: "new" });
    expect(parseSecretVersions('{"current":"new","previous":""}')).toEqual({ current: "new" });
    expect(parseSecretVersions('{"current":"new","previous":null}')).toEqual({ current: "new" });
  });

  it.each([
    ["an empty string", ""],
    ["an empty current", '{"current":""}'],
    ["a non-string current", '{"current":42}'],
    ["a non-string previous", '{"current":"a","previous":7}'],
  ])("refuses %s (a deploy error, never an open door)", (_name, stored) => {
    expect(parseSecretVersions(stored)).toBeUndefined();
  });

  it("keeps a brace-led string that is not a {current} object as a plain value", () => {
    expect(parseSecretVersions("{not json")).toEqual({ current: "{not json" });
    expect(parseSecretVersions('{"token":"x"}')).toEqual({ current: '{"token":"x"}' });
  });

  it("never yields an empty value for any string (property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (stored) => {
        const versions = parseSecretVersions(stored);
        if (versions === undefined) return;
        expect(versions.current.length).toBeGreaterThan(0);
        if ("previous" in versions) expect(versions.previous?.length).toBeGreaterThan(0);
      }),
    );
  });
});

describe("createSecrets during a rotation", () => {
  it("reads <VAR>_PREVIOUS locally", async () => {
    const secrets = createSecrets({ SERVICE_TOKEN: "new", SERVICE_TOKEN_PREVIOUS: "old" });
    expect(await secrets.versions("serviceToken")).toEqual({ current: "new", previous: "old" });
    expect(await secrets.get("serviceToken")).toBe("new");
  });

  it("reads the JSON form from Secrets Manager and picks up the next stage after the cache age", async () => {
    let stored = '{"current":"new","previous":"old"}';
    let now = 0;
    const secrets = createSecrets({ TOOL_SECRET_SECRET_ARN: "arn:tool" }, async () => stored, {
      maxAgeMs: 300_000,
      now: () => now,
    });
    expect(await secrets.versions("toolSecret")).toEqual({ current: "new", previous: "old" });
    stored = '{"current":"new"}';
    now = 299_999;
    expect((await secrets.versions("toolSecret")).previous).toBe("old");
    now = 300_000;
    expect(await secrets.versions("toolSecret")).toEqual({ current: "new" });
  });

  it("fails closed on an unusable stored value", async () => {
    const secrets = createSecrets({ TOOL_SECRET_SECRET_ARN: "arn:tool" }, async () => '{"current":""}');
    await expect(secrets.versions("toolSecret")).rejects.toThrow(/no usable "current"/);
  });
});

describe("matchSecret", () => {
  it("names the value that matched and nothing else", () => {
    const versions = { current: "new", previous: "old" };
    expect(matchSecret("new", versions)).toBe("current");
    expect(matchSecret("old", versions)).toBe("previous");
    expect(matchSecret("other", versions)).toBeUndefined();
    expect(matchSecret("old", { current: "new" })).toBeUndefined();
    expect(matchSecret("", { current: "new", previous: "" })).toBeUndefined();
  });
});

describe("webhook signature during a rotation", () => {
  const body = '{"type":"post_call_transcription"}';
  const t = 1_800_000_000;
  it("accepts a signature made with either value and refuses the old one once dropped", () => {
    const both = { current: "wsec_new", previous: "wsec_old" };
    expect(verifyWebhookSignature(Buffer.from(body), signature(body, t, "wsec_new"), both, t * 1000)).toEqual(
      {
        valid: true,
        timestampMs: t * 1000,
        matched: "current",
      },
    );
    expect(
      verifyWebhookSignature(Buffer.from(body), signature(body, t, "wsec_old"), both, t * 1000),
    ).toMatchObject({ valid: true, matched: "previous" });
    expect(
      verifyWebhookSignature(
        Buffer.from(body),
        signature(body, t, "wsec_old"),
        { current: "wsec_new" },
        t * 1000,
      ),
    ).toEqual({ valid: false, reason: "mismatch" });
  });
});

describe("service token rotation through the HTTP adapter", () => {
  const request = (token: string) =>
    apiEvent({
      method: "GET",
      path: "/conversations/conv_rot/session",
      pathParameters: { conversationId: "conv_rot" },
      headers: { Authorization: `Bearer ${token}` },
    });

  it("accepts the previous token while it is configured, logs only that 'previous' matched", async () => {
    const { deps, logger } = testDependencies({
      env: { SERVICE_TOKEN: "tok_new_value", SERVICE_TOKEN_PREVIOUS: "tok_old_value" },
    });
    const handler = makeGetSession(deps);
    // Not 401 for either value (the session lookup itself then fails against no table: 5xx or 404).
    expect((await handler(request("tok_old_value"))).statusCode).not.toBe(401);
    expect((await handler(request("tok_new_value"))).statusCode).not.toBe(401);
    expect((await handler(request("tok_other"))).statusCode).toBe(401);
    const lines = JSON.stringify(logger.lines);
    expect(lines).toContain("Caller used the previous secret value");
    expect(lines).not.toContain("tok_old_value");
    expect(lines).not.toContain("tok_new_value");
  });

  it("refuses the old token once previous is dropped", async () => {
    const { deps } = testDependencies({ env: { SERVICE_TOKEN: "tok_new_value" } });
    const response = await makeGetSession(deps)(request("tok_old_value"));
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response).error).toBe("unauthorized");
  });
});
