/**
 * The judging half of `npm run soak` (bench/soak.ts), kept free of I/O so it is unit-tested: what
 * one expiry-boundary trial saw over HTTP and read back, and whether that breaks a rule.
 */

/** What a trial does at the expiry instant, besides the task's result callback. */
export type TrialKind = "callback" | "duplicate" | "tool" | "reregister" | "postcall";

/** The kinds in rotation, so every 5 consecutive trials cover each once. */
export const TRIAL_KINDS: readonly TrialKind[] = ["callback", "duplicate", "tool", "reregister", "postcall"];

/** The offset (ms from the expiry instant) of trial `i`: -5 … +5 in turn. */
export const offsetOf = (i: number): number => (i % 11) - 5;

/** One answer: its HTTP status and JSON body (or undefined when it was not JSON). */
export interface Answer {
  readonly status: number;
  readonly body?: Record<string, unknown>;
}

/** A task as the history read showed it. */
export interface SeenTask {
  readonly taskId: string;
  readonly status: string;
  readonly outcome?: string;
  readonly createdAt: string;
  readonly dispatchedAt?: string;
  /** When the server received the result (its own clock read, the one the expiry rule used). */
  readonly resultAt?: string;
}

/** Everything a trial observed. */
export interface TrialRecord {
  readonly kind: TrialKind;
  readonly offsetMs: number;
  /** The session window the trial raced (from the registration's answer). */
  readonly expiresAt: string;
  /** The task started while the session was live, whose callback lands at the boundary. */
  readonly taskId: string;
  /** Answers to the task's result callback(s) (two for `duplicate`). */
  readonly callbacks: readonly Answer[];
  /** The boundary tool call (`tool`), re-registration (`reregister`) or webhook (`postcall`). */
  readonly extra?: Answer;
  /** Every task of the conversation, as read back after the trial. */
  readonly tasks: readonly SeenTask[];
  /** How many `task_result` history lines the conversation has for the task. */
  readonly resultLines: number;
}

/** How a trial is judged. */
export interface Verdict {
  /** `delivered` / `session_expired` / ... : the outcome the first callback answered. */
  readonly outcome: string;
  readonly violations: string[];
  readonly fiveHundreds: number;
  /** A result answered as stored but not in the history (or stored with another outcome). */
  readonly lost: boolean;
  /** A result stored twice, or two first answers for one task. */
  readonly duplicated: boolean;
  /** Tasks pending with no one able to finish them (never acknowledged, dispatched, no result). */
  readonly orphans: number;
}

const OUTCOMES = new Set(["delivered", "delivery_failed", "session_expired"]);

/** Judges one trial. */
export const judge = (trial: TrialRecord): Verdict => {
  const violations: string[] = [];
  const answers = [...trial.callbacks, ...(trial.extra ? [trial.extra] : [])];
  const fiveHundreds = answers.filter((a) => a.status >= 500).length;
  for (const a of answers) if (a.status >= 500) violations.push(`answered ${a.status}`);
  const first = trial.callbacks[0];
  const outcome = String(first?.body?.outcome ?? `http_${first?.status ?? 0}`);
  if (first?.status !== 200 || !OUTCOMES.has(outcome))
    violations.push(`callback answered ${first?.status} ${outcome}`);
  const firstAnswers = trial.callbacks.filter((a) => a.status === 200 && a.body?.duplicate !== true);
  const duplicates = trial.callbacks.filter((a) => a.body?.duplicate === true);
  for (const d of duplicates)
    if (d.body?.outcome !== outcome)
      violations.push(`duplicate answered ${String(d.body?.outcome)}, first ${outcome}`);
  const task = trial.tasks.find((t) => t.taskId === trial.taskId);
  const stored = firstAnswers.length > 0;
  const lost =
    stored && (task?.status !== "completed" || task.outcome !== outcome || trial.resultLines === 0);
  if (lost) violations.push(`lost: answered ${outcome}, stored ${task?.status}/${String(task?.outcome)}`);
  const duplicated = firstAnswers.length > 1 || trial.resultLines > 1;
  if (duplicated)
    violations.push(`duplicated: ${firstAnswers.length} first answers, ${trial.resultLines} lines`);
  // The exact boundary: a result after the window can never be delivered, before it never expired
  // (only judged at ±2 ms and beyond, where this process's clock and the server's cannot disagree).
  if (stored && trial.kind !== "reregister") {
    // Judged on the server's receive time when the history has it (the clock read the rule used);
    // else on this process's send time, where only ±2 ms and beyond can be told apart.
    const serverOffset = task?.resultAt ? Date.parse(task.resultAt) - Date.parse(trial.expiresAt) : undefined;
    const lateBy = serverOffset ?? (trial.offsetMs >= 2 ? trial.offsetMs : undefined);
    const earlyBy = serverOffset ?? (trial.offsetMs <= -3 ? trial.offsetMs : undefined);
    if (lateBy !== undefined && lateBy >= 0 && outcome === "delivered")
      violations.push(`delivered ${lateBy} ms after expiry`);
    // Before the expiry only the end of the call (the racing webhook, when it won) ends a window.
    const callEnded = trial.kind === "postcall" && first?.body?.reason === "call_ended";
    if (earlyBy !== undefined && earlyBy < 0 && outcome === "session_expired" && !callEnded)
      violations.push(`expired ${-earlyBy} ms before expiry`);
  }
  if (trial.kind === "tool" && trial.extra) {
    const status = String(trial.extra.body?.status);
    if (status === "accepted") {
      const created = trial.tasks.find((t) => t.taskId === trial.extra?.body?.taskId);
      if (!created) violations.push("accepted tool task not stored");
      else if (Date.parse(created.createdAt) >= Date.parse(trial.expiresAt))
        violations.push(`task accepted with createdAt ${created.createdAt} >= expiresAt ${trial.expiresAt}`);
    } else if (status !== "session_expired") violations.push(`boundary tool call answered ${status}`);
  }
  if (trial.kind === "postcall" && trial.extra && trial.extra.status !== 200)
    violations.push(`signed webhook answered ${trial.extra.status}`);
  // A task is an orphan if it is pending, nobody got its answer (not the trial's task, not an
  // accepted boundary call) and it was dispatched (so it never reads as abandoned).
  const acknowledged = new Set([trial.taskId, String(trial.extra?.body?.taskId ?? "")]);
  const orphans = trial.tasks.filter(
    (t) => t.status === "pending" && !acknowledged.has(t.taskId) && t.dispatchedAt !== undefined,
  ).length;
  if (orphans > 0) violations.push(`${orphans} orphan task(s)`);
  return { outcome, violations, fiveHundreds, lost, duplicated, orphans };
};

/** Totals over many trials. */
export interface Summary {
  trials: number;
  outcomes: Record<string, number>;
  byKind: Record<string, number>;
  violations: number;
  fiveHundreds: number;
  lost: number;
  duplicated: number;
  orphans: number;
  examples: string[];
}

export const emptySummary = (): Summary => ({
  trials: 0,
  outcomes: {},
  byKind: {},
  violations: 0,
  fiveHundreds: 0,
  lost: 0,
  duplicated: 0,
  orphans: 0,
  examples: [],
});

/** Adds one judged trial to the totals (keeps the first 10 violations as examples). */
export const tally = (summary: Summary, trial: TrialRecord, verdict: Verdict): Summary => {
  summary.trials++;
  const key = `${verdict.outcome}@${trial.offsetMs >= 0 ? "+" : ""}${trial.offsetMs}`;
  summary.outcomes[key] = (summary.outcomes[key] ?? 0) + 1;
  summary.byKind[trial.kind] = (summary.byKind[trial.kind] ?? 0) + 1;
  if (verdict.violations.length > 0) summary.violations++;
  summary.fiveHundreds += verdict.fiveHundreds;
  if (verdict.lost) summary.lost++;
  if (verdict.duplicated) summary.duplicated++;
  summary.orphans += verdict.orphans;
  if (verdict.violations.length > 0 && summary.examples.length < 10)
    summary.examples.push(`${trial.kind}@${trial.offsetMs}: ${verdict.violations.join("; ")}`);
  return summary;
};
