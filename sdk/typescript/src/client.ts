import type { components } from "./schema.js";
import { NetworkError, TpwalletError, type BatchError, type ErrorCode } from "./errors.js";

type S = components["schemas"];

export type APIKeyCreate = S["APIKeyCreate"];
export type APIKey = S["APIKey"];
export type APIKeyCreated = S["APIKeyCreated"];
export type Scope = S["Scope"];
export type Asset = S["Asset"];
export type AccountCreate = S["AccountCreate"];
export type Account = S["Account"];
export type AccountKind = S["AccountKind"];
export type Balance = S["Balance"];
export type Entry = S["Entry"];
export type BalanceAt = S["BalanceAt"];
export type TransferCreate = S["TransferCreate"];
export type Transfer = S["Transfer"];
export type TransferKind = S["TransferKind"];
export type TransferStatus = S["TransferStatus"];
export type PostRequest = S["PostRequest"];
export type BatchResult = S["BatchResult"];
export type Change = S["Change"];
export type JournalRecord = S["Record"];
export type JournalHead = S["JournalHead"];
export type Event = S["Event"];
export type EventType = S["Event"]["type"];
export type Follower = S["Follower"];
export type WebhookCreate = S["WebhookCreate"];
export type Webhook = S["Webhook"];
export type WebhookCreated = S["WebhookCreated"];
export type WebhookStatus = S["WebhookStatus"];
export type WebhookDelivery = S["WebhookDelivery"];
export type WebhookDeadLetter = S["WebhookDeadLetter"];

/** One page of a list; `next_cursor` is empty on the last page. */
export interface Page<T> {
  items: T[];
  next_cursor: string;
}

/** Pages through a list: `limit` items a page (1–1000, default 50), after `cursor`. */
export interface ListParams {
  limit?: number;
  cursor?: string;
}

/**
 * When a call gives up. A call is retried on a network error, on 429 rate_limited and 503
 * (overloaded, not_leader, unavailable), on 502 and 504 from a proxy, and, for writes, on
 * 409 idempotency_in_flight. That is safe because every write carries one Idempotency-Key
 * for all its attempts: the server applies it at most once and answers a retry with the
 * first answer (`CallMeta.replayed`). The wait is the server's Retry-After when it sent one,
 * else an exponential backoff with full jitter: random in [0, min(maxDelayMs,
 * baseDelayMs·2^(n−1))) before the n-th retry.
 */
export interface RetryPolicy {
  /** Attempts of one call, the first included; 1 turns retries off. */
  maxAttempts: number;
  /** No retry starts, nor wait begins, that would end later than this after the first attempt. */
  maxElapsedMs: number;
  baseDelayMs: number;
  /** Caps the backoff (not the server's Retry-After, which is always honoured). */
  maxDelayMs: number;
  /** Called before each wait, for logging and metrics. */
  onRetry?: (r: RetryInfo) => void;
}

/** A retry about to happen. */
export interface RetryInfo {
  /** openapi.yaml's operationId, e.g. "createTransfer". */
  operation: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  error: unknown;
  delayMs: number;
  /** The key every attempt of the call carries ("" for reads). */
  idempotencyKey: string;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 8,
  maxElapsedMs: 60_000,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
});

/** A policy that makes a single attempt. */
export const NO_RETRY: Readonly<Partial<RetryPolicy>> = Object.freeze({ maxAttempts: 1 });

export interface ClientOptions {
  /** Overrides of DEFAULT_RETRY. */
  retry?: Partial<RetryPolicy>;
  /** The fetch to send with (default: the global one). */
  fetch?: typeof fetch;
  userAgent?: string;
}

/** What a call learnt beside its result: pass one as `CallOptions.meta` to have it filled. */
export class CallMeta {
  /** HTTP status of the last answer (0 if none came). */
  status = 0;
  /** X-Request-Id of the last answer. */
  requestId = "";
  /** The key every attempt of a write carried ("" for reads). */
  idempotencyKey = "";
  /** The answer is the stored one of an earlier attempt with the same key. */
  replayed = false;
  /** Attempts made, the first included. */
  attempts = 0;
}

export interface CallOptions {
  /**
   * The Idempotency-Key of a write (1–255 printable ASCII characters), instead of a random
   * one made for the call. Store it with the intent to make a write idempotent across
   * processes. Reads ignore it.
   */
  idempotencyKey?: string;
  /** Sent as X-Request-Id on every attempt (1–128 of A-Za-z0-9._:-). */
  requestId?: string;
  /** Ends the call, also while it waits to retry. */
  signal?: AbortSignal;
  /** Overrides of the client's retry policy for this call. */
  retry?: Partial<RetryPolicy>;
  /** Filled when the call ends, whether it succeeded or not. */
  meta?: CallMeta;
}

/**
 * What a retry of an operation risks: "read" nothing; "write" nothing either, since it
 * carries an Idempotency-Key; "unkeyed" a second application (the server keeps no key for
 * POST /v1/api-keys and /v1/webhooks), so it is retried only when the server surely did
 * nothing; "repeatable" nothing, since doing it twice is doing it once (a webhook replay);
 * "delete" finding the thing gone (its `notFound` code).
 */
type OpKind = "read" | "write" | "unkeyed" | "repeatable" | "delete";

interface Operation {
  name: string;
  method: "GET" | "POST" | "DELETE";
  path: string;
  kind: OpKind;
  notFound?: ErrorCode;
}

const op = (name: string, method: Operation["method"], path: string, kind: OpKind, notFound?: ErrorCode): Operation =>
  ({ name, method, path, kind, notFound });

const OPS = {
  createAPIKey: op("createAPIKey", "POST", "/v1/api-keys", "unkeyed"),
  listAPIKeys: op("listAPIKeys", "GET", "/v1/api-keys", "read"),
  deleteAPIKey: op("deleteAPIKey", "DELETE", "/v1/api-keys/{id}", "delete", "not_found"),
  listAssets: op("listAssets", "GET", "/v1/assets", "read"),
  createAsset: op("createAsset", "POST", "/v1/assets", "write"),
  createAccount: op("createAccount", "POST", "/v1/accounts", "write"),
  listAccounts: op("listAccounts", "GET", "/v1/accounts", "read"),
  getAccount: op("getAccount", "GET", "/v1/accounts/{id}", "read"),
  freezeAccount: op("freezeAccount", "POST", "/v1/accounts/{id}/freeze", "write"),
  unfreezeAccount: op("unfreezeAccount", "POST", "/v1/accounts/{id}/unfreeze", "write"),
  listEntries: op("listEntries", "GET", "/v1/accounts/{id}/entries", "read"),
  getBalance: op("getBalance", "GET", "/v1/accounts/{id}/balance", "read"),
  createTransfer: op("createTransfer", "POST", "/v1/transfers", "write"),
  listTransfers: op("listTransfers", "GET", "/v1/transfers", "read"),
  createTransferBatch: op("createTransferBatch", "POST", "/v1/transfers/batch", "write"),
  getTransfer: op("getTransfer", "GET", "/v1/transfers/{id}", "read"),
  postTransfer: op("postTransfer", "POST", "/v1/transfers/{id}/post", "write"),
  increaseTransfer: op("increaseTransfer", "POST", "/v1/transfers/{id}/increase", "write"),
  voidTransfer: op("voidTransfer", "POST", "/v1/transfers/{id}/void", "write"),
  listJournal: op("listJournal", "GET", "/v1/journal", "read"),
  journalHead: op("journalHead", "GET", "/v1/journal/head", "read"),
  listEvents: op("listEvents", "GET", "/v1/events", "read"),
  listFollowers: op("listFollowers", "GET", "/v1/followers", "read"),
  readyz: op("readyz", "GET", "/readyz", "read"),
  createWebhook: op("createWebhook", "POST", "/v1/webhooks", "unkeyed"),
  listWebhooks: op("listWebhooks", "GET", "/v1/webhooks", "read"),
  getWebhook: op("getWebhook", "GET", "/v1/webhooks/{id}", "read"),
  deleteWebhook: op("deleteWebhook", "DELETE", "/v1/webhooks/{id}", "delete", "webhook_not_found"),
  listWebhookDeliveries: op("listWebhookDeliveries", "GET", "/v1/webhooks/{id}/deliveries", "read"),
  listWebhookDeadLetters: op("listWebhookDeadLetters", "GET", "/v1/webhooks/{id}/dead-letters", "read"),
  replayWebhook: op("replayWebhook", "POST", "/v1/webhooks/{id}/replay", "repeatable"),
} as const;

interface Request {
  id?: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
}

/** Long polls of `events` wait this long, the most the server allows. */
const EVENTS_WAIT_SECONDS = 30;

/**
 * A client of tpwallet's REST API (api.md, openapi.yaml). Safe to share; make one.
 *
 * Every method rejects with a TpwalletError for a problem the server answered, a
 * NetworkError when no answer came (after the retry policy gave up), or the signal's
 * reason when aborted. Writes carry an Idempotency-Key, the same on every attempt.
 */
export class Client {
  readonly #base: string;
  readonly #key: string;
  readonly #fetch: typeof fetch;
  readonly #policy: RetryPolicy;
  readonly #userAgent: string;

  /** A client of the API at baseUrl (e.g. "http://127.0.0.1:8080") with apiKey. */
  constructor(baseUrl: string, apiKey: string, options: ClientOptions = {}) {
    const u = new URL(baseUrl);
    if ((u.protocol !== "http:" && u.protocol !== "https:") || u.search || u.hash) {
      throw new TypeError(`base URL ${baseUrl}: want http(s)://host[:port]`);
    }
    this.#base = u.toString().replace(/\/+$/, "");
    this.#key = apiKey;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#policy = { ...DEFAULT_RETRY, ...options.retry };
    this.#userAgent = options.userAgent ?? "tpwallet-typescript";
  }

  // API keys

  /**
   * Makes an API key (admin); its secret `key` is in this answer only. The server keeps no
   * Idempotency-Key for it, so it is not retried once an attempt may have reached the
   * server: after a NetworkError, list the keys before trying again.
   */
  createAPIKey(req: APIKeyCreate, opts?: CallOptions): Promise<APIKeyCreated> {
    return this.#call(OPS.createAPIKey, { body: req }, opts);
  }

  /** A page of the live API keys, without secrets, by id (admin). */
  listAPIKeys(params: ListParams = {}, opts?: CallOptions): Promise<Page<APIKey>> {
    return this.#call(OPS.listAPIKeys, { query: { ...params } }, opts);
  }

  /** Every live API key (admin). */
  apiKeys(params: ListParams = {}, opts?: CallOptions): AsyncGenerator<APIKey, void, undefined> {
    return pages(params.cursor, (cursor) => this.listAPIKeys({ ...params, cursor }, opts));
  }

  /**
   * Revokes an API key (admin); `not_found` when there is none. A retry that finds it gone
   * after an attempt whose outcome was unknown counts as done.
   */
  async deleteAPIKey(id: string, opts?: CallOptions): Promise<void> {
    await this.#call(OPS.deleteAPIKey, { id }, opts);
  }

  // Assets

  async listAssets(opts?: CallOptions): Promise<Asset[]> {
    const out: { items: Asset[] } = await this.#call(OPS.listAssets, {}, opts);
    return out.items;
  }

  /** Adds an asset (admin). Codes: asset_exists. */
  createAsset(asset: Asset, opts?: CallOptions): Promise<Asset> {
    return this.#call(OPS.createAsset, { body: asset }, opts);
  }

  // Accounts

  /** Opens an account. Codes: account_exists, asset_unknown. */
  createAccount(req: AccountCreate, opts?: CallOptions): Promise<Account> {
    return this.#call(OPS.createAccount, { body: req }, opts);
  }

  /** Codes: account_not_found. */
  getAccount(id: string, opts?: CallOptions): Promise<Account> {
    return this.#call(OPS.getAccount, { id }, opts);
  }

  /** A page of accounts (of `owner`, or all), by id. */
  listAccounts(params: ListParams & { owner?: string } = {}, opts?: CallOptions): Promise<Page<Account>> {
    return this.#call(OPS.listAccounts, { query: { ...params } }, opts);
  }

  /** Every account (of `owner`, or all), by id. */
  accounts(params: ListParams & { owner?: string } = {}, opts?: CallOptions): AsyncGenerator<Account, void, undefined> {
    return pages(params.cursor, (cursor) => this.listAccounts({ ...params, cursor }, opts));
  }

  /** Freezes an account (admin). Codes: account_not_found, account_closed. */
  freezeAccount(id: string, opts?: CallOptions): Promise<Account> {
    return this.#call(OPS.freezeAccount, { id }, opts);
  }

  /** Unfreezes an account (admin). Codes: account_not_found, account_closed. */
  unfreezeAccount(id: string, opts?: CallOptions): Promise<Account> {
    return this.#call(OPS.unfreezeAccount, { id }, opts);
  }

  /** A page of an account's entries (posted movements), newest first. Codes: account_not_found. */
  listEntries(accountId: string, params: ListParams = {}, opts?: CallOptions): Promise<Page<Entry>> {
    return this.#call(OPS.listEntries, { id: accountId, query: { ...params } }, opts);
  }

  /** Every entry of an account, newest first. */
  entries(accountId: string, params: ListParams = {}, opts?: CallOptions): AsyncGenerator<Entry, void, undefined> {
    return pages(params.cursor, (cursor) => this.listEntries(accountId, { ...params, cursor }, opts));
  }

  /**
   * The posted balance just after the account's last entry at or before `at` (an RFC 3339
   * string or a Date, which has millisecond precision only; now without it). Codes:
   * account_not_found.
   */
  balanceAt(accountId: string, at?: Date | string, opts?: CallOptions): Promise<BalanceAt> {
    const q = at === undefined ? undefined : typeof at === "string" ? at : at.toISOString();
    return this.#call(OPS.getBalance, { id: accountId, query: { at: q } }, opts);
  }

  // Transfers

  /**
   * Moves `amount` from `source` to `destination`: posted at once, or held with `hold`.
   * Codes: account_not_found, insufficient_funds, account_frozen, account_closed,
   * asset_mismatch, same_account, amount_overflow, transfer_exists.
   */
  createTransfer(req: TransferCreate, opts?: CallOptions): Promise<Transfer> {
    return this.#call(OPS.createTransfer, { body: req }, opts);
  }

  /** Codes: transfer_not_found. */
  getTransfer(id: string, opts?: CallOptions): Promise<Transfer> {
    return this.#call(OPS.getTransfer, { id }, opts);
  }

  /** A page of transfers (touching `account`, or all), newest first. Codes: account_not_found. */
  listTransfers(params: ListParams & { account?: string } = {}, opts?: CallOptions): Promise<Page<Transfer>> {
    return this.#call(OPS.listTransfers, { query: { ...params } }, opts);
  }

  /** Every transfer (touching `account`, or all), newest first. */
  transfers(params: ListParams & { account?: string } = {}, opts?: CallOptions): AsyncGenerator<Transfer, void, undefined> {
    return pages(params.cursor, (cursor) => this.listTransfers({ ...params, cursor }, opts));
  }

  /**
   * Posts all of a hold (no `amount`) or part of it; `final: false` keeps the rest held.
   * Codes: transfer_not_found, transfer_not_pending, hold_expired, amount_exceeds_hold,
   * account_frozen, account_closed, amount_overflow.
   */
  postTransfer(id: string, req: PostRequest = {}, opts?: CallOptions): Promise<Transfer> {
    const empty = req.amount === undefined && (req.final === undefined || req.final);
    return this.#call(OPS.postTransfer, { id, body: empty ? undefined : req }, opts);
  }

  /**
   * Holds `amount` more on a pending transfer. Codes: transfer_not_found,
   * transfer_not_pending, hold_expired, insufficient_funds, account_frozen, account_closed.
   */
  increaseTransfer(id: string, amount: string, opts?: CallOptions): Promise<Transfer> {
    return this.#call(OPS.increaseTransfer, { id, body: { amount } }, opts);
  }

  /** Releases what a hold still reserves. Codes: transfer_not_found, transfer_not_pending, hold_expired. */
  voidTransfer(id: string, opts?: CallOptions): Promise<Transfer> {
    return this.#call(OPS.voidTransfer, { id }, opts);
  }

  /**
   * Applies 1 to 8,190 transfers in order, all or none. If any fails nothing is applied, and
   * the error is `batch_failed` with `errors` by index. Codes: batch_failed, batch_too_large.
   */
  async createBatchAtomic(transfers: TransferCreate[], opts?: CallOptions): Promise<Transfer[]> {
    const out: S["BatchCreated"] = await this.#call(OPS.createTransferBatch, { body: { atomic: true, transfers } }, opts);
    return out.transfers;
  }

  /** Applies 1 to 8,190 transfers in order, each on its own: one result per transfer. */
  async createBatch(transfers: TransferCreate[], opts?: CallOptions): Promise<BatchResult[]> {
    const out: S["BatchResults"] = await this.#call(OPS.createTransferBatch, { body: { atomic: false, transfers } }, opts);
    return out.results;
  }

  // Journal and events

  /** Records with seq > `after`; `next_cursor` is the last seq when the page is full. */
  listJournal(params: { after?: number; limit?: number } = {}, opts?: CallOptions): Promise<Page<JournalRecord>> {
    return this.#call(OPS.listJournal, { query: { ...params } }, opts);
  }

  /** Every record with seq > `after`, up to the head. */
  async *journal(params: { after?: number; limit?: number } = {}, opts?: CallOptions): AsyncGenerator<JournalRecord, void, undefined> {
    let after = params.after ?? 0;
    for (;;) {
      const page = await this.listJournal({ ...params, after }, opts);
      yield* page.items;
      if (page.next_cursor === "") return;
      after = Number(page.next_cursor);
    }
  }

  journalHead(opts?: CallOptions): Promise<JournalHead> {
    return this.#call(OPS.journalHead, {}, opts);
  }

  /**
   * Up to `limit` events after `after` (a journal seq or an event id), waiting up to
   * `waitSeconds` (0–30) for a first one. `next_cursor` is always set: pass it as `after`.
   */
  listEvents(params: { after?: string; limit?: number; waitSeconds?: number; types?: EventType[] } = {},
    opts?: CallOptions): Promise<Page<Event>> {
    const { after, limit, waitSeconds, types } = params;
    return this.#call(OPS.listEvents, { query: { after, limit, wait: waitSeconds, types: types?.join(",") } }, opts);
  }

  /**
   * The journal's events after `after`, in order, for ever: once caught up it long-polls.
   * It ends when the loop breaks, or throws when `opts.signal` aborts or a poll fails after
   * the retry policy gave up. To resume later, pass the id of the last event handled.
   */
  async *events(params: { after?: string; limit?: number; types?: EventType[] } = {},
    opts: CallOptions = {}): AsyncGenerator<Event, void, undefined> {
    let after = params.after;
    for (;;) {
      const page = await this.listEvents({ ...params, after, waitSeconds: EVENTS_WAIT_SECONDS }, opts);
      yield* page.items;
      after = page.next_cursor;
      opts.signal?.throwIfAborted();
    }
  }

  /** The journal's followers on this instance, with their lag (admin). */
  async listFollowers(opts?: CallOptions): Promise<Follower[]> {
    const out: { items: Follower[] } = await this.#call(OPS.listFollowers, {}, opts);
    return out.items;
  }

  /** Resolves when the server takes writes (GET /readyz); rejects with its TpwalletError otherwise. Not retried. */
  async ready(opts: CallOptions = {}): Promise<void> {
    await this.#call(OPS.readyz, {}, { ...opts, retry: NO_RETRY });
  }

  // Webhooks (docs/webhooks.md; admin)

  /**
   * Registers an endpoint that gets the events committed from now on; the answer holds its
   * `secret`, shown this once (the receiver verifies each delivery with it). Codes:
   * invalid_request, webhook_url_forbidden. The server keeps no Idempotency-Key for it, so
   * it is not retried once an attempt may have reached the server: after a NetworkError,
   * list the endpoints before trying again.
   */
  createWebhook(req: WebhookCreate, opts?: CallOptions): Promise<WebhookCreated> {
    return this.#call(OPS.createWebhook, { body: req }, opts);
  }

  /** A page of the endpoints, without secrets, by id. */
  listWebhooks(params: ListParams = {}, opts?: CallOptions): Promise<Page<Webhook>> {
    return this.#call(OPS.listWebhooks, { query: { ...params } }, opts);
  }

  /** Every endpoint, by id. */
  webhooks(params: ListParams = {}, opts?: CallOptions): AsyncGenerator<Webhook, void, undefined> {
    return pages(params.cursor, (cursor) => this.listWebhooks({ ...params, cursor }, opts));
  }

  /** An endpoint and how its deliveries stand. Codes: webhook_not_found. */
  getWebhook(id: string, opts?: CallOptions): Promise<Webhook> {
    return this.#call(OPS.getWebhook, { id }, opts);
  }

  /**
   * Removes an endpoint: delivery stops at once. Codes: webhook_not_found. A retry that finds
   * it gone after an attempt whose outcome was unknown counts as done.
   */
  async deleteWebhook(id: string, opts?: CallOptions): Promise<void> {
    await this.#call(OPS.deleteWebhook, { id }, opts);
  }

  /** A page of an endpoint's delivery log, newest first. Codes: webhook_not_found. */
  listWebhookDeliveries(id: string, params: ListParams = {}, opts?: CallOptions): Promise<Page<WebhookDelivery>> {
    return this.#call(OPS.listWebhookDeliveries, { id, query: { ...params } }, opts);
  }

  /** Every attempt of an endpoint's delivery log, newest first. */
  webhookDeliveries(id: string, params: ListParams = {}, opts?: CallOptions): AsyncGenerator<WebhookDelivery, void, undefined> {
    return pages(params.cursor, (cursor) => this.listWebhookDeliveries(id, { ...params, cursor }, opts));
  }

  /** A page of the events an endpoint gave up on, newest first. Codes: webhook_not_found. */
  listWebhookDeadLetters(id: string, params: ListParams = {}, opts?: CallOptions): Promise<Page<WebhookDeadLetter>> {
    return this.#call(OPS.listWebhookDeadLetters, { id, query: { ...params } }, opts);
  }

  /**
   * Delivers again from the first event of journal record `fromSeq` (1 to the head's seq + 1),
   * in order, with the events' own ids. Doing it twice is doing it once, so it is retried
   * like a read. Codes: webhook_not_found, invalid_request.
   */
  async replayWebhook(id: string, fromSeq: number, opts?: CallOptions): Promise<void> {
    await this.#call(OPS.replayWebhook, { id, body: { from_seq: fromSeq } satisfies S["WebhookReplay"] }, opts);
  }

  // The attempts of one call.

  async #call<T>(o: Operation, req: Request, opts: CallOptions = {}): Promise<T> {
    const policy: RetryPolicy = { ...this.#policy, ...opts.retry };
    const meta = opts.meta ?? new CallMeta();
    meta.idempotencyKey = o.kind === "write" ? opts.idempotencyKey ?? globalThis.crypto.randomUUID() : "";
    const url = this.#url(o, req);
    // Encoded once: every attempt sends the same bytes, which the server hashes under the key.
    const body = req.body === undefined ? undefined : JSON.stringify(req.body);
    const deadline = Date.now() + policy.maxElapsedMs;
    let ambiguous = false;
    for (let n = 1; ; n++) {
      meta.attempts = n;
      try {
        return (await this.#once(o, url, body, meta, opts)) as T;
      } catch (err) {
        if (err instanceof NetworkError && !err.notSent) ambiguous = true;
        if (o.kind === "delete" && ambiguous && err instanceof TpwalletError && err.code === o.notFound) {
          return undefined as T; // the attempt that got no answer deleted it
        }
        if (opts.signal?.aborted) throw err;
        const [ok, afterMs] = retryable(o.kind, err);
        if (!ok || n >= policy.maxAttempts) throw err;
        const delayMs = afterMs || backoff(policy, n);
        if (Date.now() + delayMs > deadline) throw err;
        policy.onRetry?.({ operation: o.name, attempt: n, error: err, delayMs, idempotencyKey: meta.idempotencyKey });
        await sleep(delayMs, opts.signal);
      }
    }
  }

  #url(o: Operation, req: Request): string {
    const path = o.path.replace("{id}", encodeURIComponent(req.id ?? ""));
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query ?? {})) {
      if (v !== undefined && v !== "") q.set(k, String(v));
    }
    const qs = q.toString();
    return this.#base + path + (qs ? `?${qs}` : "");
  }

  async #once(o: Operation, url: string, body: string | undefined, meta: CallMeta, opts: CallOptions): Promise<unknown> {
    const headers: Record<string, string> = { Accept: "application/json", "User-Agent": this.#userAgent };
    if (this.#key) headers.Authorization = `Bearer ${this.#key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (meta.idempotencyKey) headers["Idempotency-Key"] = meta.idempotencyKey;
    if (opts.requestId) headers["X-Request-Id"] = opts.requestId;
    meta.status = 0;
    meta.requestId = "";
    meta.replayed = false;
    let res: Response;
    let text: string;
    try {
      res = await this.#fetch(url, { method: o.method, headers, body, signal: opts.signal });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw new NetworkError(`tpwallet: ${o.name}: no answer: ${describe(err)}`, { cause: err, notSent: notSent(err) });
    }
    try {
      text = await res.text();
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw new NetworkError(`tpwallet: ${o.name}: the answer broke off: ${describe(err)}`, { cause: err, notSent: false });
    }
    meta.status = res.status;
    meta.requestId = res.headers.get("X-Request-Id") ?? "";
    meta.replayed = res.headers.get("Idempotent-Replayed") === "true";
    if (res.status >= 400) throw problem(res, text);
    if (res.status === 204 || text === "") return undefined;
    return JSON.parse(text);
  }
}

/** Yields every item of the pages fetch returns, from cursor on. */
async function* pages<T>(cursor: string | undefined, fetchPage: (cursor: string | undefined) => Promise<Page<T>>): AsyncGenerator<T, void, undefined> {
  for (;;) {
    const page = await fetchPage(cursor);
    yield* page.items;
    if (page.next_cursor === "" || page.next_cursor === cursor) return;
    cursor = page.next_cursor;
  }
}

function retryable(kind: OpKind, err: unknown): [boolean, number] {
  if (err instanceof NetworkError) return [kind !== "unkeyed" || err.notSent, 0];
  if (!(err instanceof TpwalletError)) return [false, 0];
  switch (err.code) {
    case "rate_limited":
    case "overloaded":
    case "not_leader":
      return [true, err.retryAfterMs]; // refused before anything was done
    case "unavailable":
      return [kind !== "unkeyed", err.retryAfterMs]; // a write's outcome is unknown
    case "idempotency_in_flight":
      return [kind === "write", err.retryAfterMs];
    case "":
      if (err.status === 429) return [true, err.retryAfterMs];
      if (err.status === 502 || err.status === 503 || err.status === 504) return [kind !== "unkeyed", err.retryAfterMs];
  }
  return [false, 0];
}

function backoff(p: RetryPolicy, n: number): number {
  const ceil = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (n - 1));
  return Math.random() * ceil;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The connection was never made, so nothing was sent. */
function notSent(err: unknown): boolean {
  const never = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);
  const cause = (err as { cause?: { code?: string; errors?: { code?: string }[] } })?.cause;
  if (cause?.code && never.has(cause.code)) return true;
  return Array.isArray(cause?.errors) && cause.errors.length > 0 && cause.errors.every((e) => e.code !== undefined && never.has(e.code));
}

function describe(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  const msg = err instanceof Error ? err.message : String(err);
  return cause instanceof Error ? `${msg}: ${cause.message}` : msg;
}

function problem(res: Response, text: string): TpwalletError {
  const base = {
    status: res.status,
    title: res.statusText,
    requestId: res.headers.get("X-Request-Id") ?? "",
    retryAfterMs: retryAfterMs(res.headers.get("Retry-After")),
  };
  const type = (res.headers.get("Content-Type") ?? "").split(";")[0]!.trim();
  if (type === "application/problem+json") {
    try {
      const p = JSON.parse(text) as { type?: string; title?: string; detail?: string; code?: ErrorCode; errors?: BatchError[]; leader?: string };
      return new TpwalletError({ ...base, type: p.type, title: p.title || base.title, detail: p.detail, code: p.code ?? "", errors: p.errors, leader: p.leader });
    } catch {
      // not JSON after all: what the status says
    }
  }
  return new TpwalletError(base);
}

function retryAfterMs(v: string | null): number {
  if (!v) return 0;
  if (/^[0-9]+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : Math.max(t - Date.now(), 0);
}
