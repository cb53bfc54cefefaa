/** Start-up problems a person can fix, said in one line (no stack trace needed). */
export class LocalSetupError extends Error {
  override readonly name = "LocalSetupError";
}
