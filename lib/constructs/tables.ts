import { CfnOutput, RemovalPolicy } from "aws-cdk-lib";
import { AttributeType, Billing, ProjectionType, TableV2 } from "aws-cdk-lib/aws-dynamodb";
import { Construct } from "constructs";
import { CONVERSATIONS_TABLE, SESSIONS_TABLE } from "../../functions/core/table-schema.js";
import type { TableAccess, TableBinding } from "./service-function.js";

/**
 * IAM actions per access level of the sessions table, from what `SessionStore` sends:
 * - read: `lookup`/`get` (consistent GetItem) and `activeCondition`, a ConditionCheck inside the
 *   callers' transactions (call-tool, record-task-result), which IAM authorizes as ConditionCheckItem.
 * - write: `set` (a Put inside TransactWriteItems, or PutItem without history) and `delete` (DeleteItem).
 * Nothing updates, queries or scans a session.
 */
export const SESSIONS_ACTIONS: Readonly<Record<TableAccess, readonly string[]>> = {
  read: ["dynamodb:GetItem", "dynamodb:ConditionCheckItem"],
  write: ["dynamodb:GetItem", "dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
};

/**
 * IAM actions per access level of the conversations table, from what `ConversationStore` sends:
 * - read: `getMeta`/`getTask` (GetItem), `listTasks`/`getConversation` (Query) and
 *   `listConversations` (Query on the `by-created` index).
 * - write: adds Put and Update (alone and inside TransactWriteItems) and BatchWriteItem
 *   (`appendMessages`' puts and `eraseConversation`'s deletes: IAM has no separate action for a
 *   batch delete), so no DeleteItem.
 */
export const CONVERSATIONS_ACTIONS: Readonly<Record<TableAccess, readonly string[]>> = {
  read: ["dynamodb:GetItem", "dynamodb:Query"],
  write: [
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
  ],
};

/** Properties of {@link Tables}. */
export interface TablesProps {
  /** Deployment stage, used in output descriptions. */
  readonly stage: string;
  /**
   * What happens to the sessions table when the stack is deleted. Sessions live ten
   * minutes, so dev stages may drop it; production should keep it. Defaulted in `readAppConfig`.
   */
  readonly sessionsRemovalPolicy: RemovalPolicy;
  /**
   * Whether conversation history has a retention period (`historyRetentionDays`): only then does
   * the conversations table get a TTL, on `purgeAt`. @default false: history is kept until erased
   */
  readonly historyRetention?: boolean;
}

/**
 * The two tables of the design: short-lived sessions (TTL `expiresAt`, epoch seconds)
 * and the conversation history (PITR, retained, deletion protection; no TTL unless a retention
 * period is set, then TTL `purgeAt`).
 */
export class Tables extends Construct {
  /** One item per conversation's current session. */
  public readonly sessions: TableV2;
  /** Conversation history; survives every session. */
  public readonly conversations: TableV2;
  /** The sessions table with its access levels, for `ServiceFunction.bindTable`. */
  public readonly sessionsBinding: TableBinding;
  /** The conversations table with its access levels, for `ServiceFunction.bindTable`. */
  public readonly conversationsBinding: TableBinding;

  constructor(scope: Construct, id: string, props: TablesProps) {
    super(scope, id);
    const { sessionsRemovalPolicy } = props;

    this.sessions = new TableV2(this, "Sessions", {
      partitionKey: { name: SESSIONS_TABLE.partitionKey, type: AttributeType.STRING },
      // DynamoDB deletes lazily (often hours late); the application decides expiry on read.
      timeToLiveAttribute: SESSIONS_TABLE.ttlAttribute,
      billing: Billing.onDemand(),
      removalPolicy: sessionsRemovalPolicy,
      deletionProtection: sessionsRemovalPolicy === RemovalPolicy.RETAIN,
    });

    this.conversations = new TableV2(this, "Conversations", {
      partitionKey: { name: CONVERSATIONS_TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: CONVERSATIONS_TABLE.sortKey, type: AttributeType.STRING },
      // By default no timeToLiveAttribute: history survives every session and is kept until erased.
      // With a retention period, DynamoDB deletes what reads already treat as gone (purgeAt).
      ...(props.historyRetention ? { timeToLiveAttribute: CONVERSATIONS_TABLE.retentionTtlAttribute } : {}),
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
      deletionProtection: true,
      globalSecondaryIndexes: [
        {
          indexName: CONVERSATIONS_TABLE.listIndex.name,
          partitionKey: { name: CONVERSATIONS_TABLE.listIndex.partitionKey, type: AttributeType.STRING },
          sortKey: { name: CONVERSATIONS_TABLE.listIndex.sortKey, type: AttributeType.STRING },
          // Only what the listing answers (not every attribute of the meta item).
          projectionType: ProjectionType.INCLUDE,
          nonKeyAttributes: [...CONVERSATIONS_TABLE.listIndex.projectedAttributes],
        },
        {
          // Sparse: only conversations awaiting a transcript carry these keys (reconciliation).
          indexName: CONVERSATIONS_TABLE.reconcileIndex.name,
          partitionKey: { name: CONVERSATIONS_TABLE.reconcileIndex.partitionKey, type: AttributeType.STRING },
          sortKey: { name: CONVERSATIONS_TABLE.reconcileIndex.sortKey, type: AttributeType.NUMBER },
          projectionType: ProjectionType.KEYS_ONLY,
        },
      ],
    });

    this.sessionsBinding = { table: this.sessions, envVar: "SESSIONS_TABLE", actions: SESSIONS_ACTIONS };
    this.conversationsBinding = {
      table: this.conversations,
      envVar: "CONVERSATIONS_TABLE",
      actions: CONVERSATIONS_ACTIONS,
      queryIndexes: [CONVERSATIONS_TABLE.listIndex.name],
    };

    new CfnOutput(scope, "SessionsTableName", {
      value: this.sessions.tableName,
      description: `Sessions table (${props.stage}), TTL attribute ${SESSIONS_TABLE.ttlAttribute}`,
    });
    new CfnOutput(scope, "ConversationsTableName", {
      value: this.conversations.tableName,
      description: `Conversation history table (${props.stage}), ${props.historyRetention ? `TTL attribute ${CONVERSATIONS_TABLE.retentionTtlAttribute} (retention period)` : "no TTL"}, retained`,
    });
  }
}
