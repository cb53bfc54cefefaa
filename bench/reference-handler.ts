import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";

/**
 * The reference bundle: the least a DynamoDB-backed function can ship. The clients are created
 * once at init (outside the handler), like ours; the handler sends one consistent GetCommand.
 */
const doc = DynamoDBDocumentClient.from(new DynamoDBClient({}));

export const handler = async (event: { conversationId: string }) => {
  const output = await doc.send(
    new GetCommand({
      TableName: process.env.SESSIONS_TABLE,
      Key: { conversationId: event.conversationId },
      ConsistentRead: true,
    }),
  );
  return output.Item ?? null;
};
