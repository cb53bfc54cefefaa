import type { ConfigNeed } from "./config.js";
import { createSessionDependencies, type SessionDependencies } from "./session-dependencies.js";
import { conversationTableOptions, type TableOverrides } from "./table-dependencies.js";
import { TaskStore } from "./task-store.js";

export { createDocumentClient, DYNAMO_CLIENT_SETTINGS } from "./table-dependencies.js";

/**
 * Everything a route that starts, reads or completes tasks needs. Built once per container,
 * outside the handler. Each handler builds only what its route uses (functions/core/routes.ts),
 * because every import ends up in its bundle and cold start:
 *
 * - no table (get-signed-url): `createBaseDependencies` (base-dependencies.ts), no AWS SDK;
 * - conversations only: `createConversationDependencies` (table-dependencies.ts), no session store;
 * - sessions, no tasks: `createSessionDependencies` (session-dependencies.ts), no task store;
 * - tasks (call-tool, get-task-result, record-task-result): `createDependencies` (here).
 */
export interface Dependencies extends SessionDependencies {
  readonly tasks: TaskStore;
}

/** Overrides for tests and the local server. */
export type DependencyOverrides = TableOverrides;

/**
 * Reads the config (failing fast when a variable is missing) and creates the clients and stores
 * once. Handlers call this at module scope: `export const handler = makeHandler(createDependencies())`.
 */
export const createDependencies = (
  env: NodeJS.ProcessEnv = process.env,
  overrides: DependencyOverrides = {},
  needs: readonly ConfigNeed[] = ["tables"],
): Dependencies => {
  const deps = createSessionDependencies(env, overrides, needs);
  return { ...deps, tasks: new TaskStore(conversationTableOptions(deps)) };
};
