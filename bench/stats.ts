import { loadavg } from "node:os";

/** The 1, 5 and 15 minute load averages, `0.52 1.74 2.48`: a figure is read next to the machine's load. */
export const loadAverage = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

/** Percentiles of a set of timings (milliseconds). */
export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
}

/** Nearest-rank percentile of an ascending array (`q` in 0..1). */
export const percentile = (sorted: readonly number[], q: number): number => {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
};

/** p50/p90/p99, min and max of the samples. */
export const summarize = (samples: readonly number[]): Summary => {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
};

/** The median of the samples. */
export const median = (samples: readonly number[]): number => summarize(samples).p50;

/** Milliseconds elapsed since `start` (a `process.hrtime.bigint()` reading). */
export const elapsedMs = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

/** Times one async call in milliseconds, with the monotonic high-resolution clock. */
export const timeAsync = async <T>(operation: () => Promise<T>): Promise<{ ms: number; value: T }> => {
  const start = process.hrtime.bigint();
  const value = await operation();
  return { ms: elapsedMs(start), value };
};

/** Formats milliseconds with a precision that suits the magnitude. */
export const fmtMs = (ms: number): string =>
  Number.isFinite(ms) ? (ms >= 100 ? ms.toFixed(1) : ms >= 10 ? ms.toFixed(2) : ms.toFixed(3)) : "n/a";

/** Formats a difference in milliseconds with its sign. */
export const fmtDeltaMs = (ms: number): string => `${ms < 0 ? "−" : "+"}${fmtMs(Math.abs(ms))}`;

/** The ratios targets are set at; a ratio within rounding of one gets a third decimal. */
const TARGET_RATIOS = [1, 1.1, 1.5];

/** Formats a ratio as `1.23×`, or `1.103×` near a target so a MISS never reads as "1.10×". */
export const fmtRatio = (ratio: number): string => {
  if (!Number.isFinite(ratio)) return "n/a";
  const near = TARGET_RATIOS.some((target) => Math.abs(ratio - target) < 0.005);
  return `${ratio.toFixed(near ? 3 : 2)}×`;
};

/** Median, min and max of per-run figures. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** The median of per-run figures with their min–max. */
export const spread = (values: readonly number[]): Spread => {
  const s = summarize(values);
  return { median: s.p50, min: s.min, max: s.max };
};

/** `12.3 (11.9–13.0)`: a median with its min–max over the runs. */
export const fmtSpread = (values: readonly number[], format: (n: number) => string = fmtMs): string => {
  if (values.length === 0) return "n/a";
  const s = spread(values);
  return `${format(s.median)} (${format(s.min)}–${format(s.max)})`;
};

/** Element-wise ratios of two per-run series (run i of `a` over run i of `b`). */
export const ratios = (a: readonly number[], b: readonly number[]): number[] =>
  a.slice(0, b.length).map((value, i) => value / (b[i] ?? Number.NaN));

/** Formats bytes as KB (1 KB = 1024 bytes) with one decimal. */
export const fmtKb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`;

/** PASS when `ratio ≤ target`, else MISS. */
export const verdict = (ratio: number, target: number): "PASS" | "MISS" =>
  Number.isFinite(ratio) && ratio <= target ? "PASS" : "MISS";
