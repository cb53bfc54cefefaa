import { InvokeStore, InvokeStoreBase } from "@aws/lambda-invoke-store";

// The local server runs many requests at once in one process, as a Lambda execution environment
// with concurrency does. Lambda keeps per-invocation state (Powertools' appended log keys, its
// metrics) apart with its InvokeStore, an AsyncLocalStorage, once AWS_LAMBDA_MAX_CONCURRENCY is
// set; the local server does the same, so each log line carries its own request's route and
// requestId while the handlers run exactly the code they run in Lambda.

let store: InvokeStoreBase | undefined;

/** Turns on per-request scopes (before the first request). Idempotent. */
export const enableInvocationScopes = async (): Promise<void> => {
  process.env.AWS_LAMBDA_MAX_CONCURRENCY ??= "64";
  if (store) return;
  const instance = await InvokeStore.getInstanceAsync(true);
  // Something made the store before (an AWS SDK call creates a single-invocation one): its
  // scopes would be global, and log keys would leak between requests again. Say so plainly.
  instance.run({}, () => undefined);
  if (instance.hasContext())
    throw new Error("Per-request scopes must be enabled before the first AWS SDK call of the process");
  store = instance;
};

/** Runs one request in its own scope, as the Lambda runtime runs one invocation. */
export const inInvocationScope = <T>(requestId: string, run: () => Promise<T>): Promise<T> => {
  if (!store) throw new Error("enableInvocationScopes() must run before the first request");
  return store.run({ [InvokeStoreBase.PROTECTED_KEYS.REQUEST_ID]: requestId }, run);
};
