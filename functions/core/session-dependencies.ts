import type { ConfigNeed } from "./config.js";
import { SessionStore } from "./session-store.js";
import {
  type ConversationDependencies,
  createConversationDependencies,
  type TableOverrides,
} from "./table-dependencies.js";

/**
 * A route that touches the sessions table but starts or reads no task (register-session,
 * get-session, post-call-webhook, delete-conversation): the session store, no task store.
 */
export interface SessionDependencies extends ConversationDependencies {
  readonly sessions: SessionStore;
}

/** Reads the config (failing fast) and creates the clients and both stores once per container. */
export const createSessionDependencies = (
  env: NodeJS.ProcessEnv = process.env,
  overrides: TableOverrides = {},
  needs: readonly ConfigNeed[] = ["tables"],
): SessionDependencies => {
  const deps = createConversationDependencies(env, overrides, needs);
  const sessions = new SessionStore({
    client: deps.doc,
    tableName: deps.config.sessionsTable,
    ttlMs: deps.config.sessionTtlMs,
    now: deps.now,
    conversations: deps.conversations,
    logger: deps.logger,
  });
  return { ...deps, sessions };
};
