import { isRecord, num, records, str } from "./demo-http.js";

// How the demo prints: one aligned row per step, and the history compactly under the last one.

const TITLE_WIDTH = 20;
const REQUEST_WIDTH = 38;
const OUTCOME_WIDTH = 18;

/** One row: mark, number, title, request, `<status> <outcome>`, ms, and the detail. */
export const row = (
  mark: string,
  number: number | undefined,
  title: string,
  request: string,
  result: string,
  ms: number | undefined,
  detail: string,
): string =>
  [
    mark,
    (number === undefined ? "" : String(number)).padStart(2),
    title.padEnd(TITLE_WIDTH),
    request.padEnd(REQUEST_WIDTH),
    result.padEnd(3 + 1 + OUTCOME_WIDTH),
    (ms === undefined ? "" : `${ms} ms`).padStart(7),
    ` ${detail}`,
  ]
    .join(" ")
    .trimEnd();

/** `12:00:05.123Z`: the demo runs for seconds, so the date is noise. */
export const clock = (at: number | string | undefined): string => {
  const ms = typeof at === "string" ? Date.parse(at) : (at ?? Number.NaN);
  return Number.isFinite(ms) ? `${new Date(ms).toISOString().slice(11, 23)}Z` : "?";
};

export const duration = (ms: number): string =>
  ms < 120_000 ? `${ms} ms` : `${ms} ms (about ${Math.round(ms / 60_000)} min)`;

export const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? "" : "s"}`;

/** Ids first, then `status`, then the rest alphabetically: stored maps do not keep their key order. */
const keyRank = (key: string): string => `${/id$/i.test(key) ? 0 : key === "status" ? 1 : 2}${key}`;

const readableOrder = (_key: string, value: unknown): unknown =>
  isRecord(value)
    ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => keyRank(a).localeCompare(keyRank(b))))
    : value;

export const compactJson = (value: unknown, max = 70): string => {
  const text = JSON.stringify(value, readableOrder) ?? "null";
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
};

/**
 * What a task produced, as a person reads it: the service stores the runner's whole answer
 * (`{status, result}` or `{status: "failed", error}`), so the envelope is unwrapped here.
 */
export const taskOutput = (stored: unknown, max: number): string => {
  if (!isRecord(stored)) return compactJson(stored, max);
  if (stored.status === "failed") return `failed: ${str(stored.error) ?? "no reason given"}`;
  return compactJson("result" in stored ? stored.result : stored, max);
};

/** The word an answer carries: `outcome` (callbacks), `status` (tools, webhook) or `error`. */
export const wordOf = (body: Record<string, unknown>): string =>
  str(body.outcome) ?? str(body.error) ?? str(body.status) ?? "unexpected answer";

const describeMessage = (
  m: Record<string, unknown>,
  data: Record<string, unknown>,
  toolOf: ReadonlyMap<string, string>,
): [string, string] => {
  switch (m.kind) {
    case "transcript":
      return [String(m.role ?? "?"), str(m.text) ?? ""];
    case "session_registered":
      return ["session", `registered, expires ${clock(str(data.expiresAt))}`];
    case "task_started":
      return ["task", `${String(data.toolName)} started ${compactJson(data.params, 50)}`];
    case "task_result":
      return [
        "task",
        `${toolOf.get(String(data.taskId)) ?? "?"} result, ${String(data.outcome)}: ${taskOutput(data.result, 50)}`,
      ];
    case "call_analysis":
      return ["analysis", `${String(data.callSuccessful ?? "?")}: ${str(m.text) ?? ""}`];
    default:
      return [String(m.kind), str(m.text) ?? ""];
  }
};

/** The history, compactly: windows, then every message in order, then every task. */
export const historyLines = (body: Record<string, unknown>): string[] => {
  const tasks = records(body.tasks);
  const toolOf = new Map(tasks.map((t) => [String(t.taskId), String(t.toolName)]));
  const lines: string[] = [];
  for (const w of records(body.sessions)) {
    const end = w.status === "active" ? "active" : `${String(w.status)} at ${clock(str(w.endedAt))}`;
    lines.push(`window   ${clock(str(w.createdAt))} → ${clock(str(w.expiresAt))}  ${end}`);
  }
  for (const m of records(body.messages)) {
    const data = isRecord(m.data) ? m.data : {};
    const [who, text] = describeMessage(m, data, toolOf);
    lines.push(`${clock(str(m.at))}  ${who.padEnd(9)} ${text}`);
  }
  for (const t of tasks) {
    const late = t.outcome === "session_expired" ? `, ${num(t.expiredForMs) ?? "?"} ms after the expiry` : "";
    lines.push(
      `task     ${String(t.toolName).padEnd(18)} ${String(t.status).padEnd(10)} ${String(t.outcome ?? "-").padEnd(16)} ${taskOutput(t.result, 60)}${late}`,
    );
  }
  return lines;
};
