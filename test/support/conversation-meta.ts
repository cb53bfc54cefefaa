import { type DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { type ConversationMeta, metaTouch, toMeta } from "../../functions/core/conversation-items.js";

/**
 * Creates a conversation's meta record if absent (never overwrites it) and returns it: the
 * create-if-absent touch every history write makes, on its own. Test set-up only; the service
 * always touches the meta as part of a real write.
 */
export const ensureMeta = async (
  doc: DynamoDBDocumentClient,
  tableName: string,
  conversationId: string,
  options: { agentId?: string } = {},
): Promise<ConversationMeta> => {
  const touch = metaTouch(conversationId, new Date().toISOString(), options.agentId);
  const output = await doc.send(
    new UpdateCommand({ TableName: tableName, ...touch, ReturnValues: "ALL_NEW" }),
  );
  return toMeta(output.Attributes ?? {});
};
