// The webhook operations against a real tpwallet server with --webhook-allow-private, and a
// receiver on 127.0.0.1 that verifies every delivery with the secret createWebhook returned.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server as HTTPServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Client, TpwalletError, type ErrorCode } from "../src/index.js";
import { adminClient, funded, headSeq, startServer, type Server } from "./server.js";

let srv: Server;
let plain: Server;
let c: Client;
before(async () => {
  srv = await startServer("--webhook-allow-private");
  plain = await startServer();
  c = adminClient(srv.url);
});
after(async () => {
  await srv.stop();
  await plain.stop();
});

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof TpwalletError && err.code === code);
}

/** docs/webhooks.md's Node verification. */
function verify(secret: string, h: IncomingHttpHeaders, body: Buffer): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const id = String(h["webhook-id"]), ts = String(h["webhook-timestamp"]);
  if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const expected = createHmac("sha256", key).update(`${id}.${ts}.`).update(body).digest();
  return String(h["webhook-signature"]).split(" ").some((sig) => {
    const [version, value] = sig.split(",");
    const got = Buffer.from(value ?? "", "base64");
    return version === "v1" && got.length === expected.length && timingSafeEqual(got, expected);
  });
}

/** A receiver: verified deliveries' ids arrive through next(), in order. */
class Receiver {
  secret = "";
  bad: string[] = [];
  #queue: string[] = [];
  #waiting: ((id: string) => void) | undefined;
  readonly server: HTTPServer;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (b: Buffer) => chunks.push(b));
      req.on("end", () => {
        const id = String(req.headers["webhook-id"]);
        if (!verify(this.secret, req.headers, Buffer.concat(chunks))) {
          this.bad.push(id);
          res.writeHead(401).end();
          return;
        }
        res.writeHead(204).end();
        if (this.#waiting) {
          const w = this.#waiting;
          this.#waiting = undefined;
          w(id);
        } else this.#queue.push(id);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  next(): Promise<string> {
    const id = this.#queue.shift();
    if (id !== undefined) return Promise.resolve(id);
    return new Promise((resolve) => (this.#waiting = resolve));
  }
}

describe("webhooks", () => {
  test("create, deliver, list, get, deliveries, dead letters, replay, delete", async () => {
    const rcv = new Receiver();
    const url = await rcv.listen();
    try {
      const { users } = await funded(c, 2, "100");
      const hook = await c.createWebhook({ url, event_types: ["transfer.posted"], description: "ts test" });
      assert.match(hook.secret, /^whsec_/);
      assert.deepEqual([hook.url, hook.event_types, hook.description, hook.status.breaker],
        [url, ["transfer.posted"], "ts test", "closed"]);
      rcv.secret = hook.secret;

      await c.createTransfer({ source: users[0]!, destination: users[1]!, amount: "1" });
      const seq = await headSeq(c);
      await c.createTransfer({ source: users[0]!, destination: users[1]!, amount: "2" });
      assert.equal(await rcv.next(), `${seq}-0`);
      await rcv.next(); // the second: the first is recorded before it is sent

      const ds = [];
      for await (const d of c.webhookDeliveries(hook.id, { limit: 1 })) ds.push(d);
      const first = ds.find((d) => d.event_id === `${seq}-0`);
      assert.ok(first, `deliveries ${JSON.stringify(ds)}`);
      assert.deepEqual([first.attempt, first.outcome, first.status, first.error, first.next_attempt_at, first.event_type],
        [1, "delivered", 204, null, null, "transfer.posted"]);

      const got = await c.getWebhook(hook.id);
      assert.equal(got.id, hook.id);
      assert.ok(got.status.delivered >= 1 && got.status.last_success_at !== null, JSON.stringify(got.status));
      assert.ok(!("secret" in got));
      const ids = [];
      for await (const w of c.webhooks({ limit: 1 })) ids.push(w.id);
      assert.ok(ids.includes(hook.id));
      assert.deepEqual(await c.listWebhookDeadLetters(hook.id), { items: [], next_cursor: "" });

      await c.replayWebhook(hook.id, seq);
      assert.equal(await rcv.next(), `${seq}-0`, "a replay sends the event again with its id");

      await rejectsWith(c.listWebhookDeliveries("wh_none"), "webhook_not_found");
      await rejectsWith(c.replayWebhook("wh_none", 1), "webhook_not_found");
      await c.deleteWebhook(hook.id);
      await rejectsWith(c.getWebhook(hook.id), "webhook_not_found");
      await rejectsWith(c.deleteWebhook(hook.id), "webhook_not_found");
      assert.deepEqual(rcv.bad, []);
    } finally {
      rcv.server.closeAllConnections();
      rcv.server.close();
    }
  });

  test("refusals", async () => {
    const p = adminClient(plain.url);
    await rejectsWith(p.createWebhook({ url: "http://127.0.0.1:1/hook" }), "webhook_url_forbidden");
    await rejectsWith(p.createWebhook({ url: "http://127.0.0.1:1/hook", event_types: ["nope" as "transfer.posted"] }),
      "invalid_request");
  });
});
