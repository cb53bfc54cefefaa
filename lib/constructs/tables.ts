import { CfnOutput, RemovalPolicy } from "aws-cdk-lib";
import { AttributeType, Billing, ProjectionType, TableV2 } from "aws-cdk-lib/aws-dynamodb";
import { Construct } from "constructs";
import { CONVERSATIONS_TABLE, SESSIONS_TABLE } from "../../functions/core/table-schema.js";

/** Properties of {@link Tables}. */
export interface TablesProps {
  /** Deployment stage, used in output descriptions. */
  readonly stage: string;
  /**
   * What happens to the sessions table when the stack is deleted. Sessions live ten
   * minutes, so dev stages may drop it; production should keep it.
   * @default RemovalPolicy.DESTROY
   */
  readonly sessionsRemovalPolicy?: RemovalPolicy;
}

/**
 * The two tables of the design: short-lived sessions (TTL `expiresAt`, epoch seconds)
 * and the permanent conversation history (no TTL, PITR, retained, deletion protection).
 */
export class Tables extends Construct {
  /** One item per conversation's current session. */
  public readonly sessions: TableV2;
  /** Conversation history; survives every session. */
  public readonly conversations: TableV2;

  constructor(scope: Construct, id: string, props: TablesProps) {
    super(scope, id);
    const sessionsRemovalPolicy = props.sessionsRemovalPolicy ?? RemovalPolicy.DESTROY;

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
      // No timeToLiveAttribute on purpose: history must survive every session.
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
      deletionProtection: true,
      globalSecondaryIndexes: [
        {
          indexName: CONVERSATIONS_TABLE.listIndex.name,
          partitionKey: { name: CONVERSATIONS_TABLE.listIndex.partitionKey, type: AttributeType.STRING },
          sortKey: { name: CONVERSATIONS_TABLE.listIndex.sortKey, type: AttributeType.STRING },
          projectionType: ProjectionType.ALL,
        },
      ],
    });

    new CfnOutput(scope, "SessionsTableName", {
      value: this.sessions.tableName,
      description: `Sessions table (${props.stage}), TTL attribute ${SESSIONS_TABLE.ttlAttribute}`,
    });
    new CfnOutput(scope, "ConversationsTableName", {
      value: this.conversations.tableName,
      description: `Conversation history table (${props.stage}), no TTL, retained`,
    });
  }
}
