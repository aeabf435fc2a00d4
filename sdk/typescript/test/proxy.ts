// A proxy between the SDK and a real server that does to each request what its plan says:
// pass it on, drop the connection before or after the server got it, or answer in the
// server's stead. Every answer it relays says Connection: close, so each attempt of the SDK
// is one connection and one request here.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Fault =
  | { kind: "pass" }
  | { kind: "dropBefore" }
  | { kind: "dropAfter" }
  | { kind: "answer"; status: number; code?: string; retryAfter?: string };

export interface Seen {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  requestId: string | undefined;
  body: string;
  fault: Fault["kind"];
  status: number; // the server's, when it was asked
  replayed: boolean;
}

export interface Proxy {
  url: string;
  seen: Seen[];
  /** The next requests that match (all, without match) meet faults, in order. */
  plan(faults: Fault[], match?: (method: string, path: string) => boolean): void;
  reset(): void;
  close(): Promise<void>;
}

export const posts = (method: string) => method === "POST";

export async function startProxy(target: string): Promise<Proxy> {
  let plan: Fault[] = [];
  let match: ((method: string, path: string) => boolean) | undefined;
  const seen: Seen[] = [];

  const next = (req: IncomingMessage): Fault => {
    if (plan.length === 0 || (match && !match(req.method!, req.url!))) return { kind: "pass" };
    return plan.shift()!;
  };

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const f = next(req);
    const s: Seen = {
      method: req.method!, path: req.url!, body: body.toString(), fault: f.kind, status: 0, replayed: false,
      idempotencyKey: req.headers["idempotency-key"] as string | undefined,
      requestId: req.headers["x-request-id"] as string | undefined,
    };
    seen.push(s);
    if (f.kind === "dropBefore") {
      req.socket.destroy();
      return;
    }
    if (f.kind === "answer") {
      const h: Record<string, string> = { Connection: "close", "X-Request-Id": "proxy-answer" };
      if (f.retryAfter !== undefined) h["Retry-After"] = f.retryAfter;
      if (!f.code) {
        res.writeHead(f.status, { ...h, "Content-Type": "text/plain" }).end("from the proxy");
        return;
      }
      res.writeHead(f.status, { ...h, "Content-Type": "application/problem+json" }).end(JSON.stringify({
        type: `https://tpwallet.dev/problems/${f.code}`, title: "proxy", status: f.status, detail: "from the test proxy", code: f.code,
      }));
      return;
    }
    let answer: Response;
    let text: Buffer;
    try {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === "string" && !["host", "connection", "content-length"].includes(k)) headers.set(k, v);
      }
      answer = await fetch(target + req.url, { method: req.method, headers, body: body.length ? body : undefined });
      text = Buffer.from(await answer.arrayBuffer());
    } catch {
      req.socket.destroy();
      return;
    }
    s.status = answer.status;
    s.replayed = answer.headers.get("idempotent-replayed") === "true";
    if (f.kind === "dropAfter") {
      req.socket.destroy(); // the server answered (and applied a write); the client never hears it
      return;
    }
    const h: Record<string, string> = { Connection: "close" };
    answer.headers.forEach((v, k) => {
      if (!["connection", "content-length", "keep-alive", "transfer-encoding"].includes(k)) h[k] = v;
    });
    res.writeHead(answer.status, h).end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    plan(faults, m) {
      plan = [...faults];
      match = m;
    },
    reset() {
      plan = [];
      match = undefined;
      seen.length = 0;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
