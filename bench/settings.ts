/** A whole-number setting from the environment, 1..max, or a clear error naming it. */
export const bounded = (name: string, fallback: number, max: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new Error(`${name} must be a whole number from 1 to ${max}`);
  return value;
};
