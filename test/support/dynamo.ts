import { randomUUID } from "node:crypto";
import { DeleteTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { inject } from "vitest";
import { useStorableKeys } from "../../functions/core/storable.js";
import { createTables, type TableNames, type TableOptions } from "../../local/create-tables.js";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../local/dynamodb-local.js";

/** Clients and freshly created, uniquely named tables on the shared DynamoDB Local. */
export interface LocalTables {
  readonly client: DynamoDBClient;
  readonly doc: DynamoDBDocumentClient;
  readonly names: TableNames;
  drop(): Promise<void>;
}

/**
 * Creates a pair of tables with unique names so test files never share state; `options` as the
 * local server gives them (`historyRetention`: the conversations TTL on `purgeAt`).
 */
export const createLocalTables = async (options: TableOptions = {}): Promise<LocalTables> => {
  const client = new DynamoDBClient({
    endpoint: inject("dynamoEndpoint"),
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const doc = useStorableKeys(
    DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }),
  );
  const suffix = randomUUID().slice(0, 8);
  const names = { sessions: `sessions-${suffix}`, conversations: `conversations-${suffix}` };
  await createTables(client, names, options);
  return {
    client,
    doc,
    names,
    drop: async () => {
      await client.send(new DeleteTableCommand({ TableName: names.sessions }));
      await client.send(new DeleteTableCommand({ TableName: names.conversations }));
      client.destroy();
    },
  };
};
