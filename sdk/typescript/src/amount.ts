/**
 * Amounts are unsigned integers in an asset's minor units ("1050" is 10.50 USD), written as
 * strings of decimal digits up to 2^128−1. The SDK keeps them as strings, exactly as the API
 * sends them; these helpers convert to and from bigint for arithmetic. Never use a JS
 * number for money: it loses digits above 2^53.
 */

/** 2^128−1, the largest amount. */
export const AMOUNT_MAX = (1n << 128n) - 1n;

const AMOUNT = /^(0|[1-9][0-9]*)$/;
const SIGNED = /^(0|-?[1-9][0-9]*)$/;

/** Reports whether s is an amount in the API's form: canonical decimal, 0 to 2^128−1. */
export function isAmount(s: string): boolean {
  return AMOUNT.test(s) && s.length <= 39 && BigInt(s) <= AMOUNT_MAX;
}

/**
 * Returns v in the API's form. A bigint or a safe non-negative integer number is converted;
 * a string must already be in the form. Throws a RangeError for anything else.
 */
export function amount(v: bigint | number | string): string {
  if (typeof v === "string") {
    if (!isAmount(v)) {
      throw new RangeError(`not an amount: ${JSON.stringify(v)} (decimal digits, no sign, point, exponent or leading zero, at most 2^128-1)`);
    }
    return v;
  }
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`not an amount: ${v} (use a bigint or a string beyond 2^53)`);
    }
    return String(v);
  }
  if (v < 0n || v > AMOUNT_MAX) {
    throw new RangeError(`amount out of range: ${v}`);
  }
  return v.toString();
}

/**
 * Parses an amount, or a balance (which may be negative: posted and available), into a
 * bigint. Throws a RangeError for anything that is not the API's form.
 */
export function toBigInt(s: string): bigint {
  if (!SIGNED.test(s) || s.replace("-", "").length > 39) {
    throw new RangeError(`not an amount: ${JSON.stringify(s)}`);
  }
  const v = BigInt(s);
  if (v > AMOUNT_MAX || v < -AMOUNT_MAX) {
    throw new RangeError(`amount out of range: ${s}`);
  }
  return v;
}
