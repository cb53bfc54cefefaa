import { DescribeTableCommand, DescribeTimeToLiveCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";

describe("tables on DynamoDB Local", () => {
  let tables: LocalTables;
  beforeAll(async () => {
    tables = await createLocalTables();
  });
  afterAll(async () => {
    await tables.drop();
  });

  it("creates the sessions table keyed by conversationId with TTL on expiresAt", async () => {
    const { Table } = await tables.client.send(
      new DescribeTableCommand({ TableName: tables.names.sessions }),
    );
    expect(Table?.KeySchema).toEqual([{ AttributeName: "conversationId", KeyType: "HASH" }]);
    const ttl = await tables.client.send(new DescribeTimeToLiveCommand({ TableName: tables.names.sessions }));
    expect(ttl.TimeToLiveDescription).toMatchObject({
      AttributeName: "expiresAt",
      TimeToLiveStatus: "ENABLED",
    });
  });

  it("creates the conversations table with conversationId + sk and no TTL", async () => {
    const { Table } = await tables.client.send(
      new DescribeTableCommand({ TableName: tables.names.conversations }),
    );
    expect(Table?.KeySchema).toEqual([
      { AttributeName: "conversationId", KeyType: "HASH" },
      { AttributeName: "sk", KeyType: "RANGE" },
    ]);
    const ttl = await tables.client.send(
      new DescribeTimeToLiveCommand({ TableName: tables.names.conversations }),
    );
    expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).toBe("DISABLED");
  });
});
