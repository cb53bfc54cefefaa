/**
 * Where a frozen test clock starts when the data it stamps reaches DynamoDB Local.
 *
 * DynamoDB Local deletes items whose TTL attribute (`expiresAt`) lies in the past by its own, real
 * clock, within seconds. A test that froze the clock at a literal calendar date and wrote a session
 * "expiring 10 minutes later" therefore worked until that date, then lost its item mid-test. So
 * clocks start from the real current time, rounded up to the next whole second: the item outlives
 * the test on the real clock too, and `t0 + 599_999` stays as readable as it was with a literal.
 *
 * Literal dates remain fine in unit tests of pure expiry functions that never write anywhere.
 */
export const frozenAtRealNow = (): number => (Math.floor(Date.now() / 1000) + 1) * 1000;

/** `ms` as DynamoDB and the API print it (`2026-11-27T10:10:00.000Z`). */
export const iso = (ms: number): string => new Date(ms).toISOString();
