import { App } from "aws-cdk-lib";
import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../functions/core/routes.js";
import { readAppConfig } from "../../lib/app-config.js";
import { synthStack } from "./synth.js";

/** The table whose key schema is exactly `keys`. */
const tableProps = (template: Template, keys: string[]): Record<string, unknown> => {
  const [table] = Object.values(template.findResources("AWS::DynamoDB::GlobalTable")).filter(
    (t) =>
      JSON.stringify((t.Properties.KeySchema as { AttributeName: string }[]).map((k) => k.AttributeName)) ===
      JSON.stringify(keys),
  );
  if (!table) throw new Error(`no table with keys ${keys.join(", ")}`);
  return table.Properties as Record<string, unknown>;
};

/** `HISTORY_RETENTION_DAYS` of every function, by its `FunctionName`-less description. */
const retentionEnv = (template: Template): Map<string, unknown> => {
  const env = new Map<string, unknown>();
  for (const fn of Object.values(template.findResources("AWS::Lambda::Function"))) {
    const variables = (fn.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)
      ?.Variables;
    env.set(String(fn.Properties.Description), variables?.HISTORY_RETENTION_DAYS);
  }
  return env;
};

const writerDescriptions = ROUTES.filter((route) => route.access.conversations === "write").map(
  (route) => route.description,
);

describe("history retention (historyRetentionDays context)", () => {
  let keptForever: Template;
  let retained: Template;
  beforeAll(() => {
    keptForever = synthStack().template;
    retained = synthStack({ historyRetentionDays: "30" }).template;
  });

  it("by default: no TTL on the conversations table and no retention in any function", () => {
    expect(tableProps(keptForever, ["conversationId", "sk"])).not.toHaveProperty("TimeToLiveSpecification");
    expect([...retentionEnv(keptForever).values()].filter((v) => v !== undefined)).toEqual([]);
  });

  it("when set: the conversations table's TTL is purgeAt; the sessions table keeps expiresAt", () => {
    expect(tableProps(retained, ["conversationId", "sk"]).TimeToLiveSpecification).toEqual({
      AttributeName: "purgeAt",
      Enabled: true,
    });
    expect(tableProps(retained, ["conversationId"]).TimeToLiveSpecification).toEqual({
      AttributeName: "expiresAt",
      Enabled: true,
    });
  });

  it("when set: every function that writes conversation items (and reconciliation) gets it, readers do not", () => {
    const env = retentionEnv(retained);
    expect(writerDescriptions.length).toBeGreaterThan(3);
    for (const description of writerDescriptions) expect(env.get(description), description).toBe("30");
    const reconcile = [...env.entries()].find(([description]) =>
      /transcripts whose post-call/.test(description),
    );
    expect(reconcile?.[1]).toBe("30");
    for (const route of ROUTES.filter((r) => r.access.conversations !== "write")) {
      expect(env.get(route.description), route.name).toBeUndefined();
    }
  });

  it.each(["0", "3651", "1.5", "thirty", "-7"])(
    "refuses historyRetentionDays %s at synth, naming it",
    (value) => {
      expect(() => readAppConfig(new App({ context: { historyRetentionDays: value } }).node)).toThrow(
        `Context "historyRetentionDays" must be a whole number from 1 to 3650 (got "${value}").`,
      );
    },
  );

  it("reads it from context as a number", () => {
    expect(
      readAppConfig(new App({ context: { historyRetentionDays: "365" } }).node).historyRetentionDays,
    ).toBe(365);
    expect(readAppConfig(new App({ context: {} }).node)).not.toHaveProperty("historyRetentionDays");
  });
});
