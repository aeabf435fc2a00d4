// A real `tpwallet serve` for the tests: the binary scripts/test.mjs built (TPWALLET_BIN),
// over a temporary data directory, on a port it reports in its log.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { randomUUID } from "node:crypto";
import { Client, NO_RETRY, type ClientOptions, type TransferCreate } from "../src/index.js";

export const ADMIN_KEY = "tpw_ts_test_admin_key_0123456789abcdef";

export interface Server {
  url: string;
  stop(): Promise<void>;
}

export async function startServer(...flags: string[]): Promise<Server> {
  const bin = process.env.TPWALLET_BIN;
  if (!bin) throw new Error("TPWALLET_BIN is not set: run the tests with `npm test` (scripts/test.mjs)");
  const dir = mkdtempSync(join(tmpdir(), "tpwallet-ts-data-"));
  const proc: ChildProcess = spawn(bin, ["serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-format", "json", ...flags], {
    env: { ...process.env, TPWALLET_ADMIN_KEY: ADMIN_KEY },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const log: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: proc.stderr! });
    lines.on("line", (line) => {
      log.push(line);
      try {
        const l = JSON.parse(line) as { msg?: string; addr?: string };
        if (l.msg === "listening" && l.addr) resolve(`http://${l.addr}`);
      } catch {
        // not a log record
      }
    });
    proc.once("exit", (code) => reject(new Error(`tpwallet serve exited (${code}) before listening:\n${log.join("\n")}`)));
  });
  const stop = async () => {
    proc.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  // Listening comes after the store is open; /readyz says when writes are taken.
  const c = new Client(url, ADMIN_KEY, { retry: NO_RETRY });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await c.ready();
      return { url, stop };
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`tpwallet serve not ready: ${err}\n${log.join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 20)); // polling a child process's readiness
    }
  }
}

export function adminClient(url: string, options: ClientOptions = {}): Client {
  return new Client(url, ADMIN_KEY, options);
}

/** An id unique to this run. */
export function uid(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 12)}`;
}

/** Opens a treasury that may go negative and n user accounts, each topped up with amount. */
export async function funded(c: Client, n: number, amount: string, asset = "USD"): Promise<{ treasury: string; users: string[] }> {
  const treasury = (await c.createAccount({ id: uid("treasury"), asset, kind: "system", allow_negative: true })).id;
  const users: string[] = [];
  for (let i = 0; i < n; i++) {
    const u = (await c.createAccount({ id: uid("user"), asset })).id;
    if (amount !== "0") await c.createTransfer({ source: treasury, destination: u, amount, kind: "topup" } satisfies TransferCreate);
    users.push(u);
  }
  return { treasury, users };
}

export async function headSeq(c: Client): Promise<number> {
  return (await c.journalHead()).seq;
}

export async function balance(c: Client, id: string): Promise<[string, string]> {
  const a = await c.getAccount(id);
  return [a.balance.posted, a.balance.available];
}

export async function transferCount(c: Client, account: string): Promise<number> {
  let n = 0;
  for await (const _ of c.transfers({ account })) n++;
  return n;
}
