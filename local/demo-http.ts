/** The demo's HTTP client: one request, its answer or why there was none; never throws. */

/** An answer, or why there was none. */
export interface Reply {
  /** Absent when nothing answered. */
  readonly status?: number;
  readonly body: Record<string, unknown>;
  readonly ms: number;
  /** Why nothing answered: `connection refused`, `no answer within 10000 ms`... */
  readonly failure?: string;
}

export interface Call {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly headers?: Record<string, string>;
  /** An object is sent as JSON; a string is sent as is (the exact bytes a signature covers). */
  readonly body?: unknown;
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
export const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
export const num = (value: unknown): number | undefined => (typeof value === "number" ? value : undefined);
export const records = (value: unknown): Record<string, unknown>[] =>
  Array.isArray(value) ? value.filter(isRecord) : [];

export const parseObject = (text: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? value : {};
  } catch {
    return {};
  }
};

const whyNoAnswer = (error: unknown, timeoutMs: number): string => {
  if (error instanceof Error && error.name === "TimeoutError") return `no answer within ${timeoutMs} ms`;
  // fetch reports a refused connection as TypeError("fetch failed") with the socket error as cause.
  const cause = error instanceof Error ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  if (cause?.code === "ECONNREFUSED") return "connection refused";
  if (cause?.code) return cause.code;
  return error instanceof Error ? error.message : String(error);
};

/** Sends one request to `base`; gives up after `timeoutMs`, so the demo never hangs. */
export const send = async (base: string, call: Call, timeoutMs: number): Promise<Reply> => {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(`${base}${call.path}`, {
      method: call.method,
      headers: {
        ...(call.body !== undefined ? { "content-type": "application/json" } : {}),
        ...call.headers,
      },
      ...(call.body !== undefined
        ? { body: typeof call.body === "string" ? call.body : JSON.stringify(call.body) }
        : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    return { status: response.status, body: parseObject(text), ms: elapsed() };
  } catch (error) {
    return { body: {}, ms: elapsed(), failure: whyNoAnswer(error, timeoutMs) };
  }
};
