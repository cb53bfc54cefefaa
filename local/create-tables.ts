import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { CONVERSATIONS_TABLE, SESSIONS_TABLE } from "../functions/core/table-schema.js";

/** Table names to create. */
export interface TableNames {
  readonly sessions: string;
  readonly conversations: string;
}

/** How the conversations table is set up, as the CDK stack would from its context. */
export interface TableOptions {
  /**
   * A history retention period is set (`HISTORY_RETENTION_DAYS`): the conversations table gets
   * its TTL on `purgeAt`, as `historyRetentionDays` gives it in the stack. @default false
   */
  readonly historyRetention?: boolean;
}

/**
 * Creates both tables with the key schema the CDK stack uses (same constants), including the
 * sessions TTL setting and the conversations list index. Existing tables are left as they are,
 * except that a retention period turns the conversations TTL on (never off again: items written
 * with a `purgeAt` are then still purged, as they would be in AWS until the TTL is disabled).
 */
export const createTables = async (
  client: DynamoDBClient,
  names: TableNames,
  options: TableOptions = {},
): Promise<void> => {
  await ignoreExisting(
    client.send(
      new CreateTableCommand({
        TableName: names.sessions,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: SESSIONS_TABLE.partitionKey, AttributeType: "S" }],
        KeySchema: [{ AttributeName: SESSIONS_TABLE.partitionKey, KeyType: "HASH" }],
      }),
    ),
  );
  await ignoreExisting(
    client.send(
      new UpdateTimeToLiveCommand({
        TableName: names.sessions,
        TimeToLiveSpecification: { AttributeName: SESSIONS_TABLE.ttlAttribute, Enabled: true },
      }),
    ),
  );
  const { listIndex, reconcileIndex } = CONVERSATIONS_TABLE;
  await ignoreExisting(
    client.send(
      new CreateTableCommand({
        TableName: names.conversations,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: CONVERSATIONS_TABLE.partitionKey, AttributeType: "S" },
          { AttributeName: CONVERSATIONS_TABLE.sortKey, AttributeType: "S" },
          { AttributeName: listIndex.partitionKey, AttributeType: "S" },
          { AttributeName: listIndex.sortKey, AttributeType: "S" },
          { AttributeName: reconcileIndex.partitionKey, AttributeType: "S" },
          { AttributeName: reconcileIndex.sortKey, AttributeType: "N" },
        ],
        KeySchema: [
          { AttributeName: CONVERSATIONS_TABLE.partitionKey, KeyType: "HASH" },
          { AttributeName: CONVERSATIONS_TABLE.sortKey, KeyType: "RANGE" },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: listIndex.name,
            KeySchema: [
              { AttributeName: listIndex.partitionKey, KeyType: "HASH" },
              { AttributeName: listIndex.sortKey, KeyType: "RANGE" },
            ],
            Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: [...listIndex.projectedAttributes] },
          },
          {
            IndexName: reconcileIndex.name,
            KeySchema: [
              { AttributeName: reconcileIndex.partitionKey, KeyType: "HASH" },
              { AttributeName: reconcileIndex.sortKey, KeyType: "RANGE" },
            ],
            Projection: { ProjectionType: "KEYS_ONLY" },
          },
        ],
      }),
    ),
  );
  await addMissingReconcileIndex(client, names.conversations);
  if (options.historyRetention) {
    await ignoreExisting(
      client.send(
        new UpdateTimeToLiveCommand({
          TableName: names.conversations,
          TimeToLiveSpecification: {
            AttributeName: CONVERSATIONS_TABLE.retentionTtlAttribute,
            Enabled: true,
          },
        }),
      ),
    );
  }
};

/**
 * A conversations table created before the awaiting-transcript index existed (a developer's
 * `.local-data/`) gets the index added, so reconciliation works on old local data too.
 */
const addMissingReconcileIndex = async (client: DynamoDBClient, tableName: string): Promise<void> => {
  const { reconcileIndex } = CONVERSATIONS_TABLE;
  const table = await client.send(new DescribeTableCommand({ TableName: tableName }));
  const indexes = table.Table?.GlobalSecondaryIndexes ?? [];
  if (indexes.some((index) => index.IndexName === reconcileIndex.name)) return;
  await client.send(
    new UpdateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [
        { AttributeName: reconcileIndex.partitionKey, AttributeType: "S" },
        { AttributeName: reconcileIndex.sortKey, AttributeType: "N" },
      ],
      GlobalSecondaryIndexUpdates: [
        {
          Create: {
            IndexName: reconcileIndex.name,
            KeySchema: [
              { AttributeName: reconcileIndex.partitionKey, KeyType: "HASH" },
              { AttributeName: reconcileIndex.sortKey, KeyType: "RANGE" },
            ],
            Projection: { ProjectionType: "KEYS_ONLY" },
          },
        },
      ],
    }),
  );
};

const ignoreExisting = async (request: Promise<unknown>): Promise<void> => {
  try {
    await request;
  } catch (error) {
    // Re-running against a persistent local database: the table is already there.
    if (error instanceof ResourceInUseException) return;
    if (error instanceof Error && /already (exists|enabled)/i.test(error.message)) return;
    throw error;
  }
};
