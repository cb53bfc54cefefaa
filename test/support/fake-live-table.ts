import { GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { AwsStub } from "aws-sdk-client-mock";

type Item = Record<string, unknown>;
type Values = Record<string, unknown>;

/** The few items the live path touches, held in memory. */
export interface LiveState {
  session?: Item;
  meta?: Item;
  tasks: Map<string, Item>;
  messages: Item[];
}

const cancelled = (reasons: { Code: string; Item?: Item }[]) =>
  Object.assign(new Error("Transaction cancelled"), {
    name: "TransactionCanceledException",
    CancellationReasons: reasons.map((r) => ({
      Code: r.Code,
      ...(r.Item ? { Item: marshall(r.Item, { removeUndefinedValues: true }) } : {}),
    })),
  });

/**
 * A deliberately small fake of the two tables for unit tests of the live path: it evaluates the
 * conditions our stores send (session `expiresAtMs > :now`, task exists and has no outcome) the way
 * DynamoDB would, so handler tests exercise the real decision logic without a database.
 */
// biome-ignore lint/suspicious/noExplicitAny: aws-sdk-client-mock's stub generics differ per client; only `on` is used.
export const fakeLiveTables = (ddb: AwsStub<any, any, any>, state: LiveState): LiveState => {
  ddb.on(GetCommand).callsFake((input: { TableName: string; Key: { sk?: string } }) => {
    if (input.TableName === "sessions") return { Item: state.session };
    if (input.Key.sk === "meta") return { Item: state.meta };
    return { Item: input.Key.sk ? state.tasks.get(input.Key.sk) : undefined };
  });
  ddb.on(QueryCommand).callsFake(() => ({ Items: [...state.tasks.values()] }));
  ddb.on(UpdateCommand).callsFake((input: { Key: { sk: string }; ExpressionAttributeValues: Values }) => {
    const task = state.tasks.get(input.Key.sk);
    const v = input.ExpressionAttributeValues;
    if (task && v[":sent"] !== undefined) {
      // markDispatched: the tool call handed the task to the runners.
      task.dispatch = v[":sent"];
      task.dispatchedAt = v[":at"];
    }
    if (task && v[":claimed"] !== undefined) {
      // claimPush (push = :pending) and finishPush (push = :claimed) are conditional.
      const expected = v[":pending"] !== undefined ? "pending" : "claimed";
      if (task.push !== expected) {
        throw Object.assign(new Error("The conditional request failed"), {
          name: "ConditionalCheckFailedException",
        });
      }
      task.push = v[":state"] ?? "claimed";
      if (v[":outcome"]) task.outcome = v[":outcome"];
    }
    return {};
  });
  ddb.on(TransactWriteCommand).callsFake((input: { TransactItems: Item[] }) => {
    const reasons: { Code: string; Item?: Item }[] = input.TransactItems.map(() => ({ Code: "None" }));
    input.TransactItems.forEach((entry, i) => {
      const check = entry.ConditionCheck as { ExpressionAttributeValues: Values } | undefined;
      if (check) {
        const now = Number(check.ExpressionAttributeValues[":now"]);
        if (!state.session || !(Number(state.session.expiresAtMs) > now)) {
          reasons[i] = { Code: "ConditionalCheckFailed", ...(state.session ? { Item: state.session } : {}) };
        }
      }
      const update = entry.Update as
        | { Key: { sk: string }; ConditionExpression?: string; ExpressionAttributeValues: Values }
        | undefined;
      if (update?.Key.sk.startsWith("task#") && update.ConditionExpression) {
        const task = state.tasks.get(update.Key.sk);
        // finishPush: push = :claimed; recordTaskResult: the task exists and has no outcome yet.
        const holds =
          update.ExpressionAttributeValues[":claimed"] !== undefined
            ? task?.push === "claimed"
            : task !== undefined && !task.outcome;
        if (!holds) reasons[i] = { Code: "ConditionalCheckFailed", ...(task ? { Item: task } : {}) };
      }
      const put = entry.Put as { Item: Item; ConditionExpression?: string } | undefined;
      if (put && String(put.Item.sk ?? "").startsWith("task#") && state.tasks.has(String(put.Item.sk))) {
        reasons[i] = { Code: "ConditionalCheckFailed", Item: state.tasks.get(String(put.Item.sk)) };
      }
    });
    if (reasons.some((r) => r.Code !== "None")) throw cancelled(reasons);
    for (const entry of input.TransactItems) {
      const put = entry.Put as { Item: Item } | undefined;
      const sk = String(put?.Item.sk ?? "");
      if (put && sk.startsWith("task#")) state.tasks.set(sk, { ...put.Item });
      if (put && sk.startsWith("msg#")) state.messages.push(put.Item);
      const update = entry.Update as { Key: { sk: string }; ExpressionAttributeValues: Values } | undefined;
      const task = update ? state.tasks.get(update.Key.sk) : undefined;
      if (update && task && update.ExpressionAttributeValues[":claimed"] !== undefined) {
        Object.assign(task, {
          push: update.ExpressionAttributeValues[":state"],
          outcome: update.ExpressionAttributeValues[":outcome"],
        });
      } else if (update && task) {
        const v = update.ExpressionAttributeValues;
        Object.assign(task, {
          status: "completed",
          result: v[":result"],
          outcome: v[":outcome"],
          resultAt: v[":resultAt"],
          ...(v[":pending"] ? { push: "pending" } : {}),
          ...(v[":expiredAt"] ? { expiredAt: v[":expiredAt"], expiredForMs: v[":expiredForMs"] } : {}),
        });
      }
    }
    return {};
  });
  return state;
};
