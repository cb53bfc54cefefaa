/**
 * What DynamoDB can store of a JSON value, as a test-side predicate: integers within ±2^53 (the
 * DocumentClient's marshaller refuses larger ones), no non-zero magnitude below 1e-130, no empty
 * map key, at most 24 levels of nesting (the item itself adds a few of DynamoDB's 32).
 * Written independently of functions/core/storable.ts: property tests use it to keep the inputs
 * that are a documented 400 out of the "stored as sent" properties.
 */
export const isStorable = (value: unknown, depth = 0): boolean => {
  if (depth > 24) return false;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return false;
    if (Number.isInteger(value)) return Number.isSafeInteger(value);
    return Math.abs(value) >= 1e-130;
  }
  if (Array.isArray(value)) return value.every((item) => isStorable(item, depth + 1));
  if (value !== null && typeof value === "object") {
    return Object.entries(value).every(([key, item]) => key !== "" && isStorable(item, depth + 1));
  }
  return true;
};
