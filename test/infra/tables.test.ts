import { Match, type Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../lib/create-app.js";
import { SKIP_BUNDLING, synthStack } from "./synth.js";

const synthTemplate = (context: Record<string, string> = {}) => synthStack(context).template;

const tableWithKeys = (template: Template, keys: string[]) => {
  const tables = template.findResources("AWS::DynamoDB::GlobalTable");
  const match = Object.values(tables).filter((table) => {
    const schema = (table.Properties.KeySchema as { AttributeName: string }[]).map((k) => k.AttributeName);
    return JSON.stringify(schema) === JSON.stringify(keys);
  });
  expect(match).toHaveLength(1);
  return match[0] as {
    Properties: Record<string, unknown>;
    DeletionPolicy?: string;
    UpdateReplacePolicy?: string;
  };
};

describe("tables", () => {
  let template: Template;
  beforeAll(() => {
    template = synthTemplate();
  });

  it("creates exactly the two tables", () => {
    template.resourceCountIs("AWS::DynamoDB::GlobalTable", 2);
    template.resourceCountIs("AWS::DynamoDB::Table", 0);
  });

  it("gives the sessions table the TTL attribute expiresAt and on-demand billing", () => {
    const sessions = tableWithKeys(template, ["conversationId"]);
    expect(sessions.Properties).toMatchObject({
      BillingMode: "PAY_PER_REQUEST",
      TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
      AttributeDefinitions: expect.arrayContaining([{ AttributeName: "conversationId", AttributeType: "S" }]),
    });
    expect(sessions.Properties.TimeToLiveSpecification).toEqual({
      AttributeName: "expiresAt",
      Enabled: true,
    });
  });

  it("never gives the conversations table a TTL", () => {
    const conversations = tableWithKeys(template, ["conversationId", "sk"]);
    expect(conversations.Properties).not.toHaveProperty("TimeToLiveSpecification");
  });

  it("protects conversation history with PITR, RETAIN and deletion protection", () => {
    const conversations = tableWithKeys(template, ["conversationId", "sk"]);
    expect(conversations.DeletionPolicy).toBe("Retain");
    expect(conversations.UpdateReplacePolicy).toBe("Retain");
    expect(conversations.Properties).toMatchObject({
      BillingMode: "PAY_PER_REQUEST",
      Replicas: [
        {
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          DeletionProtectionEnabled: true,
        },
      ],
    });
  });

  it("lets dev delete the sessions table but retains it when context says retain", () => {
    expect(tableWithKeys(template, ["conversationId"]).DeletionPolicy).toBe("Delete");
    const retained = tableWithKeys(synthTemplate({ sessionsTableRemoval: "retain" }), ["conversationId"]);
    expect(retained.DeletionPolicy).toBe("Retain");
    expect(retained.Properties).toMatchObject({ Replicas: [{ DeletionProtectionEnabled: true }] });
  });

  it("projects into the by-created listing index only the keys and what GET /conversations answers", () => {
    const conversations = tableWithKeys(template, ["conversationId", "sk"]);
    const indexes = conversations.Properties.GlobalSecondaryIndexes as Record<string, unknown>[];
    expect(indexes.find((index) => index.IndexName === "by-created")).toEqual({
      IndexName: "by-created",
      KeySchema: [
        { AttributeName: "listPk", KeyType: "HASH" },
        { AttributeName: "listSk", KeyType: "RANGE" },
      ],
      Projection: {
        ProjectionType: "INCLUDE",
        NonKeyAttributes: [
          "createdAt",
          "updatedAt",
          "status",
          "agentId",
          "lastSession",
          "sessionCount",
          "taskCount",
          "call",
          "reconcileOutcome",
          "reconcileOutcomeAt",
          "sessionStart",
          "purgeAtMs",
        ],
      },
    });
  });

  it("exports both table names as stack outputs", () => {
    template.hasOutput("SessionsTableName", { Value: { Ref: Match.stringLikeRegexp("Sessions") } });
    template.hasOutput("ConversationsTableName", { Value: { Ref: Match.stringLikeRegexp("Conversations") } });
  });

  it("names the stack after the stage from context and rejects a bad stage", () => {
    const context = { ...SKIP_BUNDLING };
    expect(createApp({ context: { ...context, stage: "prod" } }).stack.stackName).toBe(
      "ElevenlabsSessions-prod",
    );
    expect(() => createApp({ context: { ...context, stage: "Prod Stage!" } })).toThrow(/stage/);
    expect(() => createApp({ context: { ...context, sessionsTableRemoval: "maybe" } })).toThrow(
      /sessionsTableRemoval/,
    );
  });
});
