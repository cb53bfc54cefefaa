import { randomUUID } from "node:crypto";
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createTables } from "../../local/create-tables.js";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../local/dynamodb-local.js";

describe("the awaiting-transcript index on DynamoDB Local", () => {
  const client = new DynamoDBClient({
    endpoint: inject("dynamoEndpoint"),
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const created: string[] = [];
  afterAll(async () => {
    for (const TableName of created) await client.send(new DeleteTableCommand({ TableName }));
    client.destroy();
  });

  const indexOf = async (tableName: string) => {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    return Table?.GlobalSecondaryIndexes?.find((index) => index.IndexName === "awaiting-transcript");
  };

  it("is a keys-only index on reconcileShard (S) + reconcileDueAtMs (N)", async () => {
    const names = { sessions: `s-${randomUUID()}`, conversations: `c-${randomUUID()}` };
    created.push(names.sessions, names.conversations);
    await createTables(client, names);
    const index = await indexOf(names.conversations);
    expect(index?.KeySchema).toEqual([
      { AttributeName: "reconcileShard", KeyType: "HASH" },
      { AttributeName: "reconcileDueAtMs", KeyType: "RANGE" },
    ]);
    expect(index?.Projection).toEqual({ ProjectionType: "KEYS_ONLY" });
    const { Table } = await client.send(new DescribeTableCommand({ TableName: names.conversations }));
    expect(Table?.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: "reconcileShard", AttributeType: "S" },
        { AttributeName: "reconcileDueAtMs", AttributeType: "N" },
      ]),
    );
  });

  it("is added to a conversations table a local data directory kept from before it existed", async () => {
    const names = { sessions: `s-${randomUUID()}`, conversations: `c-${randomUUID()}` };
    created.push(names.sessions, names.conversations);
    await client.send(
      new CreateTableCommand({
        TableName: names.conversations,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: "conversationId", AttributeType: "S" },
          { AttributeName: "sk", AttributeType: "S" },
        ],
        KeySchema: [
          { AttributeName: "conversationId", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
      }),
    );
    expect(await indexOf(names.conversations)).toBeUndefined();
    await createTables(client, names);
    expect(await indexOf(names.conversations)).toMatchObject({ IndexName: "awaiting-transcript" });
    // Idempotent: a second start changes nothing.
    await createTables(client, names);
  });
});
