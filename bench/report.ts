import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, release, totalmem } from "node:os";

/** One table of the report, rendered as Markdown (which also reads well on a terminal). */
export interface Table {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Columns to right-align (numbers). */
  readonly numeric?: readonly number[];
}

/** One section of the report: a heading, text around a table or two. */
export interface Section {
  readonly title: string;
  readonly intro?: readonly string[];
  readonly tables: readonly Table[];
  readonly notes?: readonly string[];
}

const escapeCell = (cell: string) => cell.replaceAll("|", "\\|");

/** A Markdown table with padded columns. */
export const renderTable = (table: Table): string => {
  const rows = table.rows.map((row) => row.map(escapeCell));
  const header = table.columns.map(escapeCell);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const numeric = new Set(table.numeric ?? []);
  const line = (cells: readonly string[]) =>
    `| ${widths
      .map((w, i) => {
        const cell = cells[i] ?? "";
        return numeric.has(i) ? cell.padStart(w) : cell.padEnd(w);
      })
      .join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (numeric.has(i) ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
};

/** A section as Markdown. */
export const renderSection = (section: Section): string =>
  [
    `## ${section.title}`,
    ...(section.intro?.length ? ["", ...section.intro] : []),
    ...section.tables.flatMap((t) => ["", renderTable(t)]),
    ...(section.notes?.length ? ["", ...section.notes] : []),
  ].join("\n");

/** What the numbers were measured on. */
export interface Machine {
  readonly date: string;
  readonly node: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memory: string;
  readonly kernel: string;
  readonly java: string;
}

const cpuModel = (): string => {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const match = /^model name\s*:\s*(.+)$/m.exec(info);
    if (match?.[1]) return match[1].trim();
  } catch {
    // Not Linux: fall back to what Node reports.
  }
  return cpus()[0]?.model ?? "unknown";
};

/** First line of a command's output (`java -version` writes to stderr), or undefined. */
const firstLine = (command: string, args: readonly string[]): string | undefined => {
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.error) return undefined;
  const text = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim();
  return text.split("\n")[0]?.trim() || undefined;
};

/** The machine and the date (`date -u`). */
export const describeMachine = (): Machine => ({
  date: firstLine("date", ["-u"]) ?? new Date().toUTCString(),
  node: process.version,
  cpu: cpuModel(),
  cores: availableParallelism(),
  memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
  kernel: `${process.platform} ${release()} ${process.arch}`,
  java: firstLine("java", ["-version"]) ?? "not found",
});
