// Retries against a real server behind a proxy that drops connections and answers 503 and
// 429: every retried write carries one Idempotency-Key, so nothing is applied twice.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import {
  CallMeta, Client, NetworkError, TpwalletError, type CallOptions, type RetryInfo,
} from "../src/index.js";
import { adminClient, balance, funded, headSeq, startServer, transferCount, uid, type Server } from "./server.js";
import { posts, startProxy, type Fault, type Proxy, type Seen } from "./proxy.js";

let srv: Server;
let proxy: Proxy;
let direct: Client;
let retries: RetryInfo[];
let c: Client;
before(async () => {
  srv = await startServer();
  proxy = await startProxy(srv.url);
  direct = adminClient(srv.url);
  c = adminClient(proxy.url, { retry: { baseDelayMs: 1, maxDelayMs: 5, onRetry: (r) => retries.push(r) } });
});
after(async () => {
  await proxy.close();
  await srv.stop();
});

function fresh(faults: Fault[], match?: (method: string) => boolean) {
  proxy.reset();
  retries = [];
  proxy.plan(faults, match);
}

function oneKey(seen: Seen[], key: string) {
  assert.ok(key, "the call carried no Idempotency-Key");
  for (const [i, s] of seen.entries()) assert.equal(s.idempotencyKey, key, `attempt ${i + 1}`);
}

const overloaded = (retryAfter = "0"): Fault => ({ kind: "answer", status: 503, code: "overloaded", retryAfter });

describe("dropped connections", () => {
  test("each write dropped twice after the server applied it lands once, replayed", async () => {
    const { treasury, users: [alice, bob] } = await funded(direct, 2, "1000");
    const hold = async () => (await direct.createTransfer({ source: alice!, destination: bob!, amount: "100", hold: {} })).id;
    const cases: { name: string; setup: () => Promise<string>; call: (id: string, o: CallOptions) => Promise<unknown>; check: (id: string) => Promise<void> }[] = [
      {
        name: "create account", setup: async () => uid("user:drop"),
        call: (owner, o) => c.createAccount({ owner, asset: "USD" }, o),
        check: async (owner) => assert.equal((await direct.listAccounts({ owner })).items.length, 1),
      },
      {
        name: "create transfer", setup: async () => "",
        call: (_, o) => c.createTransfer({ source: alice!, destination: bob!, amount: "7" }, o),
        check: async () => assert.deepEqual(await balance(direct, alice!), ["993", "993"]),
      },
      {
        name: "create transfer with the caller's key", setup: async () => "",
        call: (_, o) => c.createTransfer({ source: alice!, destination: bob!, amount: "3" }, { ...o, idempotencyKey: uid("checkout") }),
        check: async () => assert.deepEqual(await balance(direct, alice!), ["990", "990"]),
      },
      {
        name: "post part of a hold", setup: hold,
        call: (id, o) => c.postTransfer(id, { amount: "10", final: false }, o),
        check: async (id) => assert.equal((await direct.getTransfer(id)).amount_posted, "10"),
      },
      {
        name: "increase a hold", setup: hold,
        call: (id, o) => c.increaseTransfer(id, "5", o),
        check: async (id) => assert.equal((await direct.getTransfer(id)).amount, "105"),
      },
      {
        name: "void a hold", setup: hold,
        call: (id, o) => c.voidTransfer(id, o),
        check: async (id) => assert.equal((await direct.getTransfer(id)).status, "voided"),
      },
      {
        name: "atomic batch", setup: async () => (await direct.createAccount({ asset: "USD" })).id,
        call: (id, o) => c.createBatchAtomic([
          { source: treasury, destination: id, amount: "20" },
          { source: id, destination: bob!, amount: "15" },
        ], o),
        check: async (id) => {
          assert.deepEqual(await balance(direct, id), ["5", "5"]);
          assert.equal(await transferCount(direct, id), 2);
        },
      },
      {
        name: "freeze", setup: async () => bob!,
        call: (id, o) => c.freezeAccount(id, o),
        check: async (id) => assert.equal((await direct.getAccount(id)).status, "frozen"),
      },
      {
        name: "unfreeze", setup: async () => bob!,
        call: (id, o) => c.unfreezeAccount(id, o),
        check: async (id) => assert.equal((await direct.getAccount(id)).status, "active"),
      },
      {
        name: "create asset", setup: async () => "DROPTS",
        call: (code, o) => c.createAsset({ code, scale: 4 }, o),
        check: async (code) => assert.ok((await direct.listAssets()).some((a) => a.code === code)),
      },
    ];
    for (const tc of cases) {
      const id = await tc.setup();
      const head = await headSeq(direct);
      fresh([{ kind: "dropAfter" }, { kind: "dropAfter" }], posts);
      const meta = new CallMeta();
      await tc.call(id, { meta });
      assert.deepEqual([meta.attempts, meta.replayed], [3, true], tc.name);
      const seen = proxy.seen.filter((s) => s.method === "POST");
      assert.equal(seen.length, 3, tc.name);
      assert.ok(seen[0]!.status < 300 && !seen[0]!.replayed && seen[1]!.replayed && seen[2]!.replayed,
        `${tc.name}: ${JSON.stringify(seen)}`);
      oneKey(seen, meta.idempotencyKey);
      assert.ok(seen.every((s) => s.body === seen[0]!.body), `${tc.name}: the same body on every attempt`);
      assert.equal(await headSeq(direct), head + 1, `${tc.name}: one journal record`);
      await tc.check(id);
      assert.equal(retries.length, 2);
      assert.ok(retries.every((r) => r.error instanceof NetworkError && r.idempotencyKey === meta.idempotencyKey));
    }
  });

  test("a request lost on its way is sent again and applied once, fresh", async () => {
    const { users: [a, b] } = await funded(direct, 2, "100");
    const head = await headSeq(direct);
    fresh([{ kind: "dropBefore" }], posts);
    const meta = new CallMeta();
    await c.createTransfer({ source: a!, destination: b!, amount: "60" }, { meta });
    assert.deepEqual([meta.attempts, meta.replayed, meta.status], [2, false, 201]);
    oneKey(proxy.seen, meta.idempotencyKey);
    assert.equal(await headSeq(direct), head + 1);
  });

  test("after giving up, the same key sent again later is replayed", async () => {
    const { users: [a, b] } = await funded(direct, 2, "100");
    const req = { source: a!, destination: b!, amount: "60" };
    fresh([{ kind: "dropAfter" }, { kind: "dropAfter" }, { kind: "dropAfter" }], posts);
    const meta = new CallMeta();
    await assert.rejects(c.createTransfer(req, { meta, retry: { maxAttempts: 3 } }), NetworkError);
    assert.equal(meta.attempts, 3);
    assert.deepEqual(await balance(direct, a!), ["40", "40"]); // the first attempt was applied
    const again = new CallMeta();
    await c.createTransfer(req, { idempotencyKey: meta.idempotencyKey, meta: again });
    assert.ok(again.replayed);
    assert.deepEqual(await balance(direct, a!), ["40", "40"]);
  });

  test("reads are retried too, without a key", async () => {
    const { users: [a] } = await funded(direct, 1, "1");
    fresh([{ kind: "dropAfter" }, overloaded()]);
    const meta = new CallMeta();
    assert.equal((await c.getAccount(a!, { meta })).id, a);
    assert.equal(meta.attempts, 3);
    assert.ok(proxy.seen.every((s) => s.idempotencyKey === undefined));
  });
});

describe("server answers", () => {
  test("try-again answers are retried with the same key; the write lands once", async () => {
    const { users: [a, b] } = await funded(direct, 2, "100");
    const head = await headSeq(direct);
    const faults: Fault[] = [
      overloaded(),
      { kind: "answer", status: 429, code: "rate_limited", retryAfter: "0" },
      { kind: "answer", status: 409, code: "idempotency_in_flight" },
      { kind: "answer", status: 503, code: "unavailable" },
      { kind: "answer", status: 503, code: "not_leader" },
      { kind: "answer", status: 502 },
      { kind: "answer", status: 504 },
    ];
    fresh(faults, posts);
    const meta = new CallMeta();
    await c.createTransfer({ source: a!, destination: b!, amount: "1" }, { meta, retry: { maxAttempts: 10 } });
    assert.deepEqual([meta.attempts, meta.replayed], [faults.length + 1, false]);
    oneKey(proxy.seen, meta.idempotencyKey);
    assert.equal(await headSeq(direct), head + 1);
  });

  test("decisions are not retried", async () => {
    const { users: [a, b] } = await funded(direct, 2, "100");
    for (const f of [
      { kind: "answer", status: 500, code: "internal" },
      { kind: "answer", status: 422, code: "insufficient_funds" },
      { kind: "answer", status: 404 },
    ] as Fault[]) {
      fresh([f], posts);
      const meta = new CallMeta();
      await assert.rejects(c.createTransfer({ source: a!, destination: b!, amount: "1" }, { meta }),
        (err: TpwalletError) => err instanceof TpwalletError && err.status === (f as { status: number }).status);
      assert.equal(meta.attempts, 1);
      assert.equal(proxy.seen.length, 1);
    }
  });

  test("Retry-After is honoured", async () => {
    const { users: [a, b] } = await funded(direct, 2, "100");
    fresh([overloaded("1")], posts);
    const start = Date.now();
    await c.createTransfer({ source: a!, destination: b!, amount: "1" });
    assert.equal(retries.length, 1);
    assert.equal(retries[0]!.delayMs, 1000);
    assert.ok(Date.now() - start >= 1000);
  });

  test("the policy bounds attempts and waits; an abort ends the wait", async () => {
    const { users: [a, b] } = await funded(direct, 2, "100");
    const pay = { source: a!, destination: b!, amount: "1" };
    const head = await headSeq(direct);
    fresh(Array(50).fill(overloaded()), posts);
    const meta = new CallMeta();
    await assert.rejects(c.createTransfer(pay, { meta, retry: { maxAttempts: 3 } }), (e: TpwalletError) => e.code === "overloaded");
    assert.deepEqual([meta.attempts, proxy.seen.length], [3, 3]);
    assert.equal(await headSeq(direct), head);

    fresh(Array(50).fill(overloaded("30")), posts);
    await assert.rejects(c.createTransfer(pay, { meta, retry: { maxElapsedMs: 5000 } }), (e: TpwalletError) => e.code === "overloaded");
    assert.deepEqual([meta.attempts, retries.length], [1, 0]);

    fresh(Array(50).fill(overloaded("20")), posts);
    const ac = new AbortController();
    await assert.rejects(
      c.createTransfer(pay, { signal: ac.signal, retry: { onRetry: () => ac.abort() } }),
      (e: Error) => e.name === "AbortError");

    fresh(Array(6).fill({ kind: "dropBefore" }), posts);
    const delays: number[] = [];
    await c.createTransfer(pay, { retry: { baseDelayMs: 8, maxDelayMs: 20, onRetry: (r) => delays.push(r.delayMs) } });
    assert.equal(delays.length, 6);
    delays.forEach((d, i) => assert.ok(d >= 0 && d < Math.min(8 * 2 ** i, 20), `retry ${i + 1} waited ${d}`));
  });
});

describe("API keys", () => {
  test("a create that may have reached the server is not retried; a delete is", async () => {
    const named = async (name: string) => {
      let n = 0;
      for await (const k of direct.apiKeys()) if (k.name === name) n++;
      return n;
    };
    fresh([{ kind: "dropAfter" }], posts);
    const meta = new CallMeta();
    await assert.rejects(c.createAPIKey({ name: "dropped", scopes: ["read"] }, { meta }), NetworkError);
    assert.deepEqual([meta.attempts, proxy.seen.length, await named("dropped")], [1, 1, 1]);

    fresh([{ kind: "answer", status: 429, code: "rate_limited", retryAfter: "0" }, overloaded()], posts);
    const k = await c.createAPIKey({ name: "limited", scopes: ["read"] }, { meta });
    assert.deepEqual([meta.attempts, await named("limited")], [3, 1]);

    fresh([{ kind: "dropAfter" }], (m) => m === "DELETE");
    await c.deleteAPIKey(k.id, { meta });
    assert.equal(meta.attempts, 2);
    assert.deepEqual(proxy.seen.map((s) => s.status), [204, 404]);
    assert.equal(await named("limited"), 0);

    // Nothing listens: a failed dial surely sent nothing, so even this is retried.
    const port = await new Promise<number>((resolve) => {
      const l = createServer().listen(0, "127.0.0.1", () => {
        const { port } = l.address() as AddressInfo;
        l.close(() => resolve(port));
      });
    });
    const nowhere = new Client(`http://127.0.0.1:${port}`, "k", { retry: { baseDelayMs: 1 } });
    await assert.rejects(nowhere.createAPIKey({ scopes: ["read"] }, { meta, retry: { maxAttempts: 3 } }),
      (e: NetworkError) => e instanceof NetworkError && e.notSent);
    assert.equal(meta.attempts, 3);
  });
});

describe("a real server that limits", () => {
  test("429 from --rate-limit: waits as told, every write lands once", async () => {
    const limited = await startServer("--rate-limit", "1", "--rate-burst", "1");
    try {
      const seen: RetryInfo[] = [];
      const rc = adminClient(limited.url, { retry: { onRetry: (r) => seen.push(r) } });
      const t = (await rc.createAccount({ asset: "USD", allow_negative: true })).id;
      const u = (await rc.createAccount({ asset: "USD" })).id;
      await rc.createTransfer({ source: t, destination: u, amount: "5" });
      const r429 = seen.filter((r) => r.error instanceof TpwalletError && r.error.code === "rate_limited");
      assert.ok(r429.length > 0, "no 429");
      assert.ok(r429.every((r) => r.delayMs === 1000));
      assert.deepEqual(await balance(rc, u), ["5", "5"]);
    } finally {
      await limited.stop();
    }
  });
});
