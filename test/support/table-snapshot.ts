import { type DynamoDBDocumentClient, QueryCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";

/** Every item of a table (small test tables only), in a stable order. */
export const scanAll = async (doc: DynamoDBDocumentClient, tableName: string) => {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(
      new ScanCommand({
        TableName: tableName,
        ConsistentRead: true,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
};

/** Every item of one conversation in the conversations table (one page: small test partitions). */
export const conversationItems = async (
  doc: DynamoDBDocumentClient,
  tableName: string,
  conversationId: string,
) =>
  (
    await doc.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: "conversationId = :id",
        ExpressionAttributeValues: { ":id": conversationId },
        ConsistentRead: true,
      }),
    )
  ).Items ?? [];

/**
 * A snapshot of both tables as one string, to prove that a rejected request wrote nothing:
 * equal snapshots before and after mean no item was added, changed or removed.
 */
export const snapshotTables = async (
  doc: DynamoDBDocumentClient,
  tables: { readonly sessions: string; readonly conversations: string },
): Promise<string> =>
  JSON.stringify({
    sessions: await scanAll(doc, tables.sessions),
    conversations: await scanAll(doc, tables.conversations),
  });
