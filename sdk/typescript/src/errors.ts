import type { components } from "./schema.js";

/** The stable reason of a rejection (api.md; docs/api-errors.md lists each with its status). */
export type ErrorCode = components["schemas"]["Code"];

/** One failed transfer of an atomic batch. */
export type BatchError = components["schemas"]["BatchError"];

/**
 * A problem the server answered (RFC 9457 application/problem+json): a rejection that
 * changed nothing, or a server-side failure. Branch on `code`:
 *
 * ```ts
 * if (err instanceof TpwalletError && err.code === "insufficient_funds") { ... }
 * ```
 */
export class TpwalletError extends Error {
  /** HTTP status: 400, 404, 409, 422, 429, 503, ... */
  readonly status: number;
  /** The stable code; "" when the answer was no problem document (a proxy's 502, say). */
  readonly code: ErrorCode | "";
  readonly title: string;
  /** A human explanation of this occurrence; do not parse it. */
  readonly detail: string;
  readonly type: string;
  /** X-Request-Id of the answer: it finds the request in the server's logs. */
  readonly requestId: string;
  /** `batch_failed`: every failed transfer of the atomic batch, by index. */
  readonly errors: BatchError[];
  /** `not_leader`: the leader's address, when the server knows it. */
  readonly leader: string;
  /** The server's Retry-After in milliseconds (429 and 503), 0 when absent. */
  readonly retryAfterMs: number;

  constructor(p: {
    status: number;
    code?: ErrorCode | "";
    title?: string;
    detail?: string;
    type?: string;
    requestId?: string;
    errors?: BatchError[];
    leader?: string;
    retryAfterMs?: number;
  }) {
    const code = p.code ?? "";
    super(`tpwallet: ${p.status} ${code || p.title || ""}${p.detail ? `: ${p.detail}` : ""}${p.requestId ? ` (request ${p.requestId})` : ""}`);
    this.name = "TpwalletError";
    this.status = p.status;
    this.code = code;
    this.title = p.title ?? "";
    this.detail = p.detail ?? "";
    this.type = p.type ?? "";
    this.requestId = p.requestId ?? "";
    this.errors = p.errors ?? [];
    this.leader = p.leader ?? "";
    this.retryAfterMs = p.retryAfterMs ?? 0;
  }
}

/**
 * No answer came: the connection failed or broke. Unless `notSent`, the server may have
 * received, and even applied, the request.
 */
export class NetworkError extends Error {
  readonly notSent: boolean;
  constructor(message: string, options: { cause: unknown; notSent: boolean }) {
    super(message, { cause: options.cause });
    this.name = "NetworkError";
    this.notSent = options.notSent;
  }
}

/** Reports whether err is a TpwalletError with the given code. */
export function isCode(err: unknown, code: ErrorCode): err is TpwalletError {
  return err instanceof TpwalletError && err.code === code;
}
