import { decodeTableKey, encodeCursor } from "../functions/core/conversation-items.js";
import { migrateHistory } from "../functions/core/history-migration.js";
import { createConversationDependencies } from "../functions/core/table-dependencies.js";

/**
 * `npm run migrate [-- --from <resume key>]`: brings conversations stored before issue 18 to
 * today's shape (session windows under `win#`, meta items on the sharded listing keys).
 *
 * - Locally: against DYNAMODB_ENDPOINT (the DynamoDB Local `npm start` prints).
 * - In AWS: `CONVERSATIONS_TABLE=<ConversationsTableName output> npm run migrate` with credentials
 *   that may scan, put and update that table.
 * Idempotent; each page prints a resume key, so an interrupted run continues with `--from <key>`.
 */
const main = async () => {
  const env = { ...process.env };
  env.SESSIONS_TABLE ??= "sessions";
  env.CONVERSATIONS_TABLE ??= "conversations";
  const deps = createConversationDependencies(env);
  const tableName = deps.config.conversationsTable;
  const fromIndex = process.argv.indexOf("--from");
  const from = fromIndex >= 0 ? process.argv[fromIndex + 1] : undefined;
  const totals = await migrateHistory(deps.doc, tableName, {
    ...(from ? { startKey: decodeTableKey(from) } : {}),
    onPage: (page) =>
      console.log(
        JSON.stringify({
          message: "Migration page done",
          scanned: page.scanned,
          windowsWritten: page.windowsWritten,
          metasMoved: page.metasMoved,
          ...(page.nextKey ? { resumeWith: `--from ${encodeCursor(page.nextKey)}` } : {}),
        }),
      ),
  });
  console.log(JSON.stringify({ message: "Migration finished", tableName, ...totals }));
};

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
