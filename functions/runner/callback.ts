/** What the runner POSTs to the task's callback URL. */
export type TaskResultBody =
  | { readonly status: "succeeded"; readonly result?: unknown }
  | { readonly status: "failed"; readonly error: string };

/** How the service answered a callback the runner is done with. */
export interface CallbackAnswer {
  /** `delivered`, `delivery_failed`, `session_expired`, or `unknown` when the 2xx body had none. */
  readonly outcome: string;
  /** True when the service had already stored a result for the task (SQS delivered the message twice). */
  readonly duplicate: boolean;
  /** HTTP status of the final answer. */
  readonly httpStatus: number;
  /** Attempts it took, 1 when the first one was answered. */
  readonly attempts: number;
}

/** The callback was refused for good (400/401/403/404/413...): retrying the same request cannot help. */
export class CallbackRejectedError extends Error {
  override readonly name = "CallbackRejectedError";
  constructor(
    readonly httpStatus: number,
    readonly attempts: number,
  ) {
    super(`The service refused the task result with HTTP ${httpStatus}.`);
  }
}

/** Every attempt failed transiently and the time budget ran out: SQS should deliver the message again. */
export class CallbackUndeliveredError extends Error {
  override readonly name = "CallbackUndeliveredError";
  constructor(
    readonly attempts: number,
    readonly lastProblem: string,
    /**
     * How long the next attempt still had to wait when the runner gave up (its back-off, or the
     * service's `Retry-After` when longer), if it was waiting: the message's redelivery honours it.
     */
    readonly retryAfterMs?: number,
  ) {
    super(
      `The task result could not be delivered after ${attempts} attempt(s); last problem: ${lastProblem}.`,
    );
  }
}

/** Retry policy of the callback. */
export interface CallbackPolicy {
  /** Attempts at most, the first included. */
  readonly maxAttempts: number;
  /** Backoff before the second attempt; doubles after each failure, up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** One attempt is aborted after this long and counts as a timeout (retried). */
  readonly attemptTimeoutMs: number;
}

/** Six attempts, 250 ms doubling to at most 8 s, 5 s per attempt: about 40 s in the worst case. */
export const DEFAULT_CALLBACK_POLICY: CallbackPolicy = {
  maxAttempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 8000,
  attemptTimeoutMs: 5000,
};

/** What the callback needs from the outside world; tests pass fakes. */
export interface CallbackDeps {
  readonly fetch: typeof fetch;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** A number in [0, 1): jitter, so runners retrying together spread out. */
  readonly random: () => number;
}

// 408 and 429 ask to come back later; 500/502/503/504 are a throttled table, a crashed or timed-out
// function or API Gateway in between. Every other answer is final.
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** `Retry-After` in ms (delta-seconds or an HTTP date), or undefined when absent or unreadable. */
export const retryAfterMs = (header: string | null, nowMs: number): number | undefined => {
  if (header === null || header.trim() === "") return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
};

/** Backoff before attempt `attempt + 1`: exponential with "equal jitter" (half fixed, half random). */
export const backoffMs = (policy: CallbackPolicy, attempt: number, random: number): number => {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
};

const readAnswer = async (response: Response): Promise<{ outcome: string; duplicate: boolean }> => {
  try {
    const body = (await response.json()) as { outcome?: unknown; duplicate?: unknown };
    return {
      outcome: typeof body.outcome === "string" ? body.outcome : "unknown",
      duplicate: body.duplicate === true,
    };
  } catch {
    return { outcome: "unknown", duplicate: false };
  }
};

const describeFailure = (error: unknown): string => {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError"))
    return "timeout";
  return "network error";
};

/**
 * POSTs the result with `Authorization: Bearer <token>` until the service answers for good.
 * Any 2xx is done: `delivered`, `delivery_failed` (stored, push to the app failed),
 * `session_expired` (stored as late) and duplicates all mean the result is in history.
 * 408/429/5xx, timeouts and network errors are retried with backoff, waiting at least what
 * `Retry-After` asks, as long as the next attempt can start before `deadlineAtMs`.
 */
export const postTaskResult = async (
  deps: CallbackDeps,
  policy: CallbackPolicy,
  target: { readonly callbackUrl: string; readonly callbackToken: string },
  body: TaskResultBody,
  deadlineAtMs: number,
): Promise<CallbackAnswer> => {
  const payload = JSON.stringify(body);
  let lastProblem = "no attempt made";
  let waitMs = 0;
  for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
    const remainingMs = deadlineAtMs - deps.now();
    if (remainingMs <= 0) throw new CallbackUndeliveredError(attempt - 1, lastProblem);
    try {
      const response = await deps.fetch(target.callbackUrl, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${target.callbackToken}` },
        body: payload,
        signal: AbortSignal.timeout(Math.min(policy.attemptTimeoutMs, remainingMs)),
      });
      if (response.ok) {
        return { ...(await readAnswer(response)), httpStatus: response.status, attempts: attempt };
      }
      // Drain the body so the connection can be reused.
      await response.arrayBuffer().catch(() => undefined);
      if (!RETRYABLE_STATUS.has(response.status)) throw new CallbackRejectedError(response.status, attempt);
      lastProblem = `HTTP ${response.status}`;
      waitMs = Math.max(
        backoffMs(policy, attempt, deps.random()),
        retryAfterMs(response.headers.get("retry-after"), deps.now()) ?? 0,
      );
    } catch (error) {
      if (error instanceof CallbackRejectedError) throw error;
      lastProblem = describeFailure(error);
      waitMs = backoffMs(policy, attempt, deps.random());
    }
    if (attempt === policy.maxAttempts) break;
    if (deps.now() + waitMs >= deadlineAtMs) {
      throw new CallbackUndeliveredError(
        attempt,
        `${lastProblem}; no time left to wait ${waitMs} ms`,
        waitMs,
      );
    }
    await deps.sleep(waitMs);
  }
  throw new CallbackUndeliveredError(policy.maxAttempts, lastProblem, waitMs);
};
