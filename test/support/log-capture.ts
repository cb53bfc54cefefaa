import type { AppLogger } from "../../functions/core/powertools.js";

/** One captured log call. */
export interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  data: Record<string, unknown>;
}

/** A logger that records every call, for asserting on what on-call would read. */
export const captureLogger = (): AppLogger & { lines: LogLine[]; text(): string } => {
  const lines: LogLine[] = [];
  const record =
    (level: LogLine["level"]) =>
    (message: unknown, ...rest: unknown[]) => {
      const data = Object.assign({}, ...rest.filter((r) => r && typeof r === "object")) as Record<
        string,
        unknown
      >;
      lines.push({ level, message: String(message), data });
    };
  return {
    lines,
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
    text: () => JSON.stringify(lines),
  } as AppLogger & { lines: LogLine[]; text(): string };
};
