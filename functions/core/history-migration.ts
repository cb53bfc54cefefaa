import { type DynamoDBDocumentClient, PutCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import {
  LEGACY_LIST_PK,
  listPartitionKey,
  META_SK,
  MSG_PREFIX,
  windowSortKey,
} from "./conversation-items.js";
import { conditionalWrite, mapTransientErrors } from "./dynamo.js";
import { CONVERSATIONS_TABLE } from "./table-schema.js";

// `npm run migrate` (local/migrate.ts): brings conversation items stored before issue 18 to
// today's shape. Reads work on both shapes; this only makes old conversations cheap to read.
//  - every `session_registered` line gets its `win#` copy (a history page reads windows there);
//  - every meta item still on the unsharded listing key moves to its shard.
// Idempotent (the copies are deterministic, the move is conditional) and resumable (each page
// ends with the key to start the next from).

/** What one page of the migration did, and where the next page starts (absent: done). */
export interface MigrationPage {
  readonly scanned: number;
  readonly windowsWritten: number;
  readonly metasMoved: number;
  readonly nextKey?: Record<string, unknown>;
}

/** Migrates the items of one scan page of the conversations table. */
export const migrateHistoryPage = async (
  client: DynamoDBDocumentClient,
  tableName: string,
  startKey?: Record<string, unknown>,
  pageSize = 500,
): Promise<MigrationPage> => {
  const { listIndex } = CONVERSATIONS_TABLE;
  const output = await mapTransientErrors(() =>
    client.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression:
          "(begins_with(sk, :msg) AND #kind = :registered) OR (sk = :meta AND #listPk = :legacy)",
        ExpressionAttributeNames: { "#kind": "kind", "#listPk": listIndex.partitionKey },
        ExpressionAttributeValues: {
          ":msg": MSG_PREFIX,
          ":registered": "session_registered",
          ":meta": META_SK,
          ":legacy": LEGACY_LIST_PK,
        },
        Limit: pageSize,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    ),
  );
  let windowsWritten = 0;
  let metasMoved = 0;
  for (const item of output.Items ?? []) {
    const conversationId = String(item.conversationId);
    if (item.sk === META_SK) {
      const moved = await conditionalWrite(() =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { conversationId, sk: META_SK },
            UpdateExpression: "SET #listPk = :pk",
            ConditionExpression: "#listPk = :legacy",
            ExpressionAttributeNames: { "#listPk": listIndex.partitionKey },
            ExpressionAttributeValues: { ":pk": listPartitionKey(conversationId), ":legacy": LEGACY_LIST_PK },
          }),
        ),
      );
      if (moved) metasMoved++;
      continue;
    }
    const sessionId = String(item.id);
    await mapTransientErrors(() =>
      client.send(
        new PutCommand({
          TableName: tableName,
          Item: { ...item, sk: windowSortKey(Number(item.atMs), sessionId) },
        }),
      ),
    );
    windowsWritten++;
  }
  return {
    scanned: output.ScannedCount ?? 0,
    windowsWritten,
    metasMoved,
    ...(output.LastEvaluatedKey ? { nextKey: output.LastEvaluatedKey } : {}),
  };
};

/** Runs the migration to the end from `startKey` (or the start), reporting each page. */
export const migrateHistory = async (
  client: DynamoDBDocumentClient,
  tableName: string,
  options: { startKey?: Record<string, unknown>; onPage?: (page: MigrationPage) => void } = {},
): Promise<{ scanned: number; windowsWritten: number; metasMoved: number }> => {
  const totals = { scanned: 0, windowsWritten: 0, metasMoved: 0 };
  let startKey = options.startKey;
  do {
    const page = await migrateHistoryPage(client, tableName, startKey);
    totals.scanned += page.scanned;
    totals.windowsWritten += page.windowsWritten;
    totals.metasMoved += page.metasMoved;
    options.onPage?.(page);
    startKey = page.nextKey;
  } while (startKey);
  return totals;
};
