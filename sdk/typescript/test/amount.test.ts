import { test } from "node:test";
import assert from "node:assert/strict";
import { AMOUNT_MAX, amount, isAmount, toBigInt } from "../src/index.js";

const MAX = "340282366920938463463374607431768211455";

test("isAmount accepts exactly the API's form", () => {
  for (const s of ["0", "1", "1050", MAX]) assert.ok(isAmount(s), s);
  for (const s of ["", "01", "-1", "+1", "1e3", "1.5", " 1", "340282366920938463463374607431768211456", "9".repeat(40)]) {
    assert.ok(!isAmount(s), s);
  }
});

test("amount converts bigints and safe numbers, and refuses the rest", () => {
  assert.equal(amount(1050), "1050");
  assert.equal(amount(AMOUNT_MAX), MAX);
  assert.equal(amount("250"), "250");
  for (const bad of [-1, 1.5, 2 ** 53, -1n, AMOUNT_MAX + 1n, "01", "1e3"]) assert.throws(() => amount(bad), RangeError);
});

test("toBigInt reads amounts and signed balances", () => {
  assert.equal(toBigInt(MAX), AMOUNT_MAX);
  assert.equal(toBigInt("-" + MAX), -AMOUNT_MAX);
  assert.equal(toBigInt("0"), 0n);
  for (const bad of ["-0", "--1", "+1", "01", "1.0", "340282366920938463463374607431768211456"]) assert.throws(() => toBigInt(bad), RangeError);
  assert.equal(toBigInt(amount(toBigInt("123") * 2n)), 246n);
});
