// Every operation of the SDK against a real tpwallet server.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  CallMeta, Client, TpwalletError, isCode, toBigInt, type ErrorCode, type Event, type TransferCreate,
} from "../src/index.js";
import { adminClient, balance, funded, headSeq, startServer, transferCount, uid, type Server } from "./server.js";

let srv: Server;
let c: Client;
before(async () => {
  srv = await startServer();
  c = adminClient(srv.url);
});
after(() => srv.stop());

/** Asserts that p rejects with a TpwalletError of code. */
async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<TpwalletError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TpwalletError, `want a TpwalletError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.ok(err.status >= 400 && err.requestId !== "" && err.title !== "", `incomplete error ${JSON.stringify(err)}`);
    return err;
  }
  assert.fail(`resolved, want ${code}`);
}

describe("API keys", () => {
  test("create, use, list, delete", async () => {
    const name = uid("svc");
    const k = await c.createAPIKey({ name, scopes: ["write"] });
    assert.ok(k.key && k.id);
    assert.deepEqual(k.scopes, ["write"]);
    const w = new Client(srv.url, k.key);
    await w.createAccount({ asset: "USD" });
    await rejectsWith(w.createAsset({ code: "NOPE", scale: 2 }), "forbidden");

    const ids: string[] = [];
    for await (const key of c.apiKeys({ limit: 1 })) ids.push(key.id);
    assert.ok(ids.includes(k.id) && ids.length >= 2, `apiKeys: ${ids}`);

    await c.deleteAPIKey(k.id);
    await rejectsWith(w.getAccount("x"), "unauthenticated");
    await rejectsWith(c.deleteAPIKey(k.id), "not_found");
    await rejectsWith(c.createAPIKey({ scopes: ["root" as "read"] }), "invalid_request");
  });
});

describe("assets and accounts", () => {
  test("assets", async () => {
    const code = "T" + uid("").replace(/[^a-z]/g, "").toUpperCase().slice(0, 8);
    assert.deepEqual(await c.createAsset({ code, scale: 3 }), { code, scale: 3 });
    const all = await c.listAssets();
    assert.ok(all.some((a) => a.code === code) && all.some((a) => a.code === "ETH" && a.scale === 18));
    await rejectsWith(c.createAsset({ code, scale: 3 }), "asset_exists");
  });

  test("accounts", async () => {
    const owner = uid("user:o");
    const a = await c.createAccount({ id: uid("acc"), owner, asset: "EUR", kind: "merchant", metadata: { tier: "kyc2" } });
    assert.equal(a.status, "active");
    assert.equal(a.balance.posted, "0");
    assert.equal(a.metadata.tier, "kyc2");
    assert.deepEqual(await c.getAccount(a.id), a);
    const b = await c.createAccount({ owner, asset: "EUR" });
    assert.equal(b.kind, "user");
    const ids: string[] = [];
    for await (const acc of c.accounts({ owner, limit: 1 })) ids.push(acc.id);
    assert.deepEqual(ids, [a.id, b.id].sort());

    await rejectsWith(c.getAccount(uid("missing")), "account_not_found");
    await rejectsWith(c.createAccount({ id: a.id, asset: "EUR" }), "account_exists");
    await rejectsWith(c.createAccount({ asset: "NOSUCH" }), "asset_unknown");

    assert.equal((await c.freezeAccount(b.id)).status, "frozen");
    await rejectsWith(c.createTransfer({ source: a.id, destination: b.id, amount: "1" }), "account_frozen");
    assert.equal((await c.unfreezeAccount(b.id)).status, "active");
  });
});

describe("transfers", () => {
  test("pay, list, entries, balance at", async () => {
    const { treasury, users: [alice, bob] } = await funded(c, 2, "0");
    const topup = await c.createTransfer({ source: treasury, destination: alice!, amount: "1000", kind: "topup" });
    const pay = await c.createTransfer({ source: alice!, destination: bob!, amount: "250", reference: "order-42" });
    assert.equal(pay.status, "posted");
    assert.equal(pay.amount_posted, "250");
    assert.equal(pay.expires_at, null);
    assert.deepEqual(await balance(c, alice!), ["750", "750"]);
    assert.deepEqual(await balance(c, treasury), ["-1000", "-1000"]);
    assert.equal(toBigInt((await c.getAccount(treasury)).balance.posted), -1000n);
    assert.equal((await c.getTransfer(pay.id)).id, pay.id);
    await rejectsWith(c.getTransfer("tr_0000000000000"), "transfer_not_found");

    const list: string[] = [];
    for await (const t of c.transfers({ account: alice!, limit: 1 })) list.push(t.id);
    assert.deepEqual(list, [pay.id, topup.id]);
    const entries = [];
    for await (const e of c.entries(alice!, { limit: 1 })) entries.push([e.direction, e.amount, e.posted_after]);
    assert.deepEqual(entries, [["debit", "250", "750"], ["credit", "1000", "1000"]]);

    assert.equal((await c.balanceAt(alice!, topup.created_at)).posted, "1000");
    assert.equal((await c.balanceAt(alice!)).posted, "750");
    await rejectsWith(c.balanceAt(uid("missing")), "account_not_found");

    const eur = (await c.createAccount({ asset: "EUR" })).id;
    const rejections: [TransferCreate, ErrorCode][] = [
      [{ source: alice!, destination: bob!, amount: "751" }, "insufficient_funds"],
      [{ source: alice!, destination: alice!, amount: "1" }, "same_account"],
      [{ source: alice!, destination: eur, amount: "1" }, "asset_mismatch"],
      [{ source: treasury, destination: alice!, amount: "340282366920938463463374607431768211455" }, "amount_overflow"],
      [{ source: uid("missing"), destination: alice!, amount: "1" }, "account_not_found"],
      [{ source: alice!, destination: bob!, amount: "0" }, "invalid_request"],
    ];
    for (const [req, code] of rejections) await rejectsWith(c.createTransfer(req), code);
    assert.deepEqual(await balance(c, alice!), ["750", "750"]);

    const id = uid("pay");
    await c.createTransfer({ id, source: alice!, destination: bob!, amount: "50" });
    const meta = new CallMeta();
    assert.equal((await c.createTransfer({ id, source: alice!, destination: bob!, amount: "50" }, { meta })).id, id);
    assert.equal(meta.status, 200);
    await rejectsWith(c.createTransfer({ id, source: alice!, destination: bob!, amount: "51" }), "transfer_exists");
  });

  test("holds: increase, partial and final post, void", async () => {
    const { users: [alice, bob] } = await funded(c, 2, "1000");
    const h = await c.createTransfer({ source: alice!, destination: bob!, amount: "300", hold: { timeout_seconds: 600 } });
    assert.equal(h.status, "pending");
    assert.ok(h.expires_at);
    assert.deepEqual(await balance(c, alice!), ["1000", "700"]);
    assert.equal((await c.increaseTransfer(h.id, "50")).amount, "350");
    await rejectsWith(c.increaseTransfer(h.id, "651"), "insufficient_funds");
    const part = await c.postTransfer(h.id, { amount: "100", final: false });
    assert.equal(part.status, "pending");
    assert.equal(part.amount_posted, "100");
    await rejectsWith(c.postTransfer(h.id, { amount: "251" }), "amount_exceeds_hold");
    const fin = await c.postTransfer(h.id);
    assert.equal(fin.status, "posted");
    assert.equal(fin.amount_posted, "350");
    await rejectsWith(c.voidTransfer(h.id), "transfer_not_pending");
    const v = await c.createTransfer({ source: alice!, destination: bob!, amount: "600", hold: {} });
    assert.equal(v.expires_at, null);
    assert.equal((await c.voidTransfer(v.id)).status, "voided");
    assert.deepEqual(await balance(c, alice!), ["650", "650"]);
  });

  test("batches", async () => {
    const { users: [a, b, d] } = await funded(c, 3, "100");
    const trs = await c.createBatchAtomic([
      { source: a!, destination: b!, amount: "100" },
      { source: b!, destination: d!, amount: "200" },
    ]);
    assert.equal(trs.length, 2);
    const err = await rejectsWith(c.createBatchAtomic([
      { source: d!, destination: a!, amount: "10" },
      { source: a!, destination: b!, amount: "1000" },
    ]), "batch_failed");
    assert.equal(err.errors[0]?.index, 1);
    assert.equal(err.errors[0]?.code, "insufficient_funds");
    assert.deepEqual(await balance(c, d!), ["300", "300"]);
    const res = await c.createBatch([
      { source: d!, destination: a!, amount: "10" },
      { source: a!, destination: b!, amount: "1000" },
    ]);
    assert.ok("transfer" in res[0]!);
    assert.ok("error" in res[1]! && res[1].error.code === "insufficient_funds");
    await rejectsWith(c.createBatch(Array.from({ length: 8191 }, () => ({ source: a!, destination: b!, amount: "1" }))), "batch_too_large");
  });
});

describe("journal and events", () => {
  test("journal", async () => {
    const h0 = await headSeq(c);
    const { users: [u] } = await funded(c, 1, "5");
    const head = await c.journalHead();
    assert.ok(head.seq > h0 && head.hash.length === 64);
    let prev = "0".repeat(64);
    let n = 0;
    for await (const r of c.journal({ limit: 3 })) {
      n++;
      assert.equal(r.seq, n);
      assert.equal(r.prev_hash, prev);
      prev = r.hash;
    }
    assert.ok(n >= head.seq);
    let found = 0;
    for await (const r of c.journal({ after: h0 })) {
      for (const ch of r.changes) {
        if ("transfer" in ch && ch.transfer.destination === u && ch.op === "create") found++;
      }
    }
    assert.equal(found, 1);
  });

  test("events: a long-polling follower sees new writes", async () => {
    const head = String(await headSeq(c));
    const acc = uid("ev");
    const ac = new AbortController();
    const seen: [string, string][] = [];
    const follower = (async () => {
      for await (const e of c.events({ after: head, limit: 1 }, { signal: ac.signal })) {
        if (e.type === "account.created" && e.subject === acc) seen.push([e.type, e.subject]);
        if ("transfer" in e.data && e.data.transfer.destination === acc) {
          seen.push([e.type, e.subject]);
          return;
        }
      }
    })();
    const tre = (await c.createAccount({ asset: "USD", allow_negative: true })).id;
    await c.createAccount({ id: acc, asset: "USD" });
    const tr = await c.createTransfer({ source: tre, destination: acc, amount: "9" });
    await follower;
    assert.deepEqual(seen, [["account.created", acc], ["transfer.posted", tr.id]]);

    const page = await c.listEvents({ after: head, types: ["account.created"] });
    assert.ok(page.items.length > 0 && page.items.every((e: Event) => e.type === "account.created"));
    await rejectsWith(c.listEvents({ types: ["no.such" as "account.created"] }), "invalid_request");
    assert.deepEqual(await c.listFollowers(), []);
  });

  test("events: ends when aborted, while a poll waits", async () => {
    const head = String(await headSeq(c));
    let sent!: () => void;
    const polling = new Promise<void>((r) => (sent = r));
    const spy = new Client(srv.url, (await c.createAPIKey({ scopes: ["read"] })).key, {
      fetch: (input, init) => {
        sent();
        return fetch(input, init);
      },
    });
    const ac = new AbortController();
    const done = (async () => {
      for await (const _ of spy.events({ after: head, types: ["asset.created"] }, { signal: ac.signal })) {
        // other tests' events: keep following
      }
    })();
    await polling;
    ac.abort();
    await assert.rejects(done, (err: Error) => err.name === "AbortError");
  });
});

describe("idempotency", () => {
  test("the same key and request are replayed, not applied again", async () => {
    const { treasury, users: [a, b] } = await funded(c, 2, "100");
    const key = uid("order");
    const m1 = new CallMeta();
    const m2 = new CallMeta();
    const t1 = await c.createTransfer({ source: a!, destination: b!, amount: "30" }, { idempotencyKey: key, meta: m1 });
    const t2 = await c.createTransfer({ source: a!, destination: b!, amount: "30" }, { idempotencyKey: key, meta: m2 });
    assert.equal(t1.id, t2.id);
    assert.deepEqual([m1.replayed, m2.replayed, m1.idempotencyKey, m2.status], [false, true, key, 201]);
    assert.equal(await transferCount(c, a!), 2);
    await rejectsWith(c.createTransfer({ source: a!, destination: b!, amount: "31" }, { idempotencyKey: key }), "idempotency_key_reused");

    // A rejection is stored and replayed too.
    const big = { source: a!, destination: b!, amount: "500" };
    const key2 = uid("big");
    await rejectsWith(c.createTransfer(big, { idempotencyKey: key2 }), "insufficient_funds");
    await c.createTransfer({ source: treasury, destination: a!, amount: "500" });
    const m3 = new CallMeta();
    const err = await rejectsWith(c.createTransfer(big, { idempotencyKey: key2, meta: m3 }), "insufficient_funds");
    assert.ok(m3.replayed && isCode(err, "insufficient_funds"));

    const ma = new CallMeta();
    const mb = new CallMeta();
    await c.createTransfer({ source: a!, destination: b!, amount: "1" }, { meta: ma });
    await c.createTransfer({ source: a!, destination: b!, amount: "1" }, { meta: mb });
    assert.ok(ma.idempotencyKey && ma.idempotencyKey !== mb.idempotencyKey);
    const mr = new CallMeta();
    await c.getAccount(a!, { meta: mr, requestId: "trace-42" });
    assert.deepEqual([mr.idempotencyKey, mr.requestId], ["", "trace-42"]);
  });

  test("an unknown key is unauthenticated; a bad base URL is refused", async () => {
    await rejectsWith(new Client(srv.url, "nope").listAssets(), "unauthenticated");
    for (const bad of ["ftp://h", "http://h/?q=1"]) assert.throws(() => new Client(bad, "k"));
  });
});
