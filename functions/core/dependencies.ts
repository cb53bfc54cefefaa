import type { ConfigNeed } from "./config.js";
import { SessionStore } from "./session-store.js";
import {
  type ConversationDependencies,
  conversationTableOptions,
  createConversationDependencies,
  type TableOverrides,
} from "./table-dependencies.js";
import { TaskStore } from "./task-store.js";

export { createDocumentClient, DYNAMO_CLIENT_SETTINGS } from "./table-dependencies.js";

/**
 * Everything a route that touches the sessions table needs. Built once per container, outside the
 * handler. Each handler builds only what its route's `access` names (functions/core/routes.ts),
 * because every import ends up in its bundle and cold start:
 *
 * - no table (get-signed-url): `createBaseDependencies` (base-dependencies.ts), no AWS SDK;
 * - conversations only: `createConversationDependencies` (table-dependencies.ts), no session store;
 * - sessions: `createDependencies` (here), with the task store of the tool and callback routes.
 */
export interface Dependencies extends ConversationDependencies {
  readonly sessions: SessionStore;
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
  const deps = createConversationDependencies(env, overrides, needs);
  const sessions = new SessionStore({
    client: deps.doc,
    tableName: deps.config.sessionsTable,
    ttlMs: deps.config.sessionTtlMs,
    now: deps.now,
    conversations: deps.conversations,
    logger: deps.logger,
  });
  const tasks = new TaskStore(conversationTableOptions(deps));
  return { ...deps, sessions, tasks };
};
