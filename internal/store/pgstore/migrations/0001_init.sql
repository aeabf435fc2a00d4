-- tpwallet PostgreSQL schema, version 1.
--
-- Conventions, for analysts:
--   * Times are Unix nanoseconds (bigint), engine time; to_timestamp(x / 1e9) converts.
--   * Amounts are unsigned 128-bit integers in minor units: NUMERIC(39,0). Signed balances
--     (posted_after) are NUMERIC(40,0).
--   * Ids are text COLLATE "C", so that ORDER BY id is byte order, as the API pages them.
--   * Columns named record hold the exact binary encoding the store reads back
--     (journal.AppendRecord / AppendTransfer / AppendAccount); the other columns are the same
--     data, written in the same transaction, for querying.

-- head: exactly one row, the newest committed journal record (seq 0, zero hash when empty).
-- Commit locks it (SELECT ... FOR UPDATE) and checks the new record follows it.
CREATE TABLE head (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq        bigint  NOT NULL,
    hash       bytea   NOT NULL,
    timestamp  bigint  NOT NULL,   -- the head record's engine time (Unix ns)
    last_time  bigint  NOT NULL    -- time of the latest change committed (Unix ns)
);
INSERT INTO head (seq, hash, timestamp, last_time)
VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000', 0, 0);

-- journal: the clearing ledger, one row per committed engine batch, hash-chained:
-- prev_hash of seq n is hash of seq n-1; hash = SHA-256 per docs/journal.md.
CREATE TABLE journal (
    seq        bigint PRIMARY KEY,
    prev_hash  bytea  NOT NULL,
    hash       bytea  NOT NULL,
    timestamp  bigint NOT NULL,    -- engine time of the batch (Unix ns)
    changes    integer NOT NULL,   -- number of changes in the record
    record     bytea  NOT NULL     -- journal.AppendRecord encoding
);

-- assets created by asset_create changes (the preloaded assets are built in, not listed).
CREATE TABLE assets (
    code   text COLLATE "C" PRIMARY KEY,
    scale  smallint NOT NULL
);

-- accounts as of the latest commit.
CREATE TABLE accounts (
    id               text COLLATE "C" PRIMARY KEY,
    owner            text COLLATE "C" NOT NULL,  -- '' when none
    asset            text NOT NULL,
    kind             text NOT NULL,
    allow_negative   boolean NOT NULL,
    status           text NOT NULL,
    metadata         json NOT NULL,
    created_at       bigint NOT NULL,
    debits_posted    NUMERIC(39,0) NOT NULL,
    credits_posted   NUMERIC(39,0) NOT NULL,
    debits_pending   NUMERIC(39,0) NOT NULL,
    credits_pending  NUMERIC(39,0) NOT NULL,
    posted           NUMERIC(40,0) GENERATED ALWAYS AS (credits_posted - debits_posted) STORED,
    record           bytea NOT NULL            -- journal.AppendAccount encoding
);
CREATE INDEX accounts_owner ON accounts (owner, id);

-- transfers as of their latest change. created_seq/created_index locate the create change
-- in the journal (newest first = ORDER BY created_seq DESC, created_index DESC).
CREATE TABLE transfers (
    id             text COLLATE "C" PRIMARY KEY,
    source         text COLLATE "C" NOT NULL,
    destination    text COLLATE "C" NOT NULL,
    amount         NUMERIC(39,0) NOT NULL,   -- authorised: the original plus increases
    asset          text NOT NULL,
    kind           text NOT NULL,
    status         text NOT NULL,            -- pending, posted, voided, expired
    reference      text NOT NULL,
    metadata       json NOT NULL,
    created_at     bigint NOT NULL,
    posted_at      bigint NOT NULL,          -- 0 before any post
    amount_posted  NUMERIC(39,0) NOT NULL,
    expires_at     bigint NOT NULL,          -- 0 = never
    hold           boolean NOT NULL,
    hold_timeout   bigint NOT NULL,          -- seconds, as requested
    created_seq    bigint NOT NULL,
    created_index  integer NOT NULL,
    record         bytea NOT NULL            -- journal.AppendTransfer encoding
);
CREATE INDEX transfers_created ON transfers (created_seq DESC, created_index DESC);
CREATE INDEX transfers_source ON transfers (source);
CREATE INDEX transfers_destination ON transfers (destination);

-- activity: one row per transfer change per account (source and destination). Rows with
-- posts = true are the account's entries (posted movements); posted_after is the account's
-- posted balance just after the change, on every row.
CREATE TABLE activity (
    account       text COLLATE "C" NOT NULL,
    time          bigint NOT NULL,           -- change time (Unix ns), unique per account
    transfer_id   text COLLATE "C" NOT NULL,
    op            text NOT NULL,             -- create, post, increase, void, expire
    posts         boolean NOT NULL,
    direction     text NOT NULL,             -- debit (source) or credit (destination)
    amount        NUMERIC(39,0) NOT NULL,
    kind          text NOT NULL,
    posted_after  NUMERIC(40,0) NOT NULL,
    PRIMARY KEY (account, time)
);
CREATE VIEW entries AS SELECT account, time, transfer_id, direction, amount, kind, posted_after
    FROM activity WHERE posts;

-- pending: the ids of holds still pending (Load reads these).
CREATE TABLE pending (
    id text COLLATE "C" PRIMARY KEY
);

-- idempotency: stored answers to requests sent with an Idempotency-Key.
CREATE TABLE idempotency (
    scope         text COLLATE "C" NOT NULL,  -- the id of the API key that sent it
    key           text COLLATE "C" NOT NULL,
    request_hash  bytea NOT NULL,
    status        integer NOT NULL,
    body          bytea,
    expires_at    bigint NOT NULL,            -- Unix ns; good up to and including
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_expires ON idempotency (expires_at);

-- api_keys: only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id          text COLLATE "C" PRIMARY KEY,
    name        text NOT NULL,
    scopes      text[] NOT NULL,
    hash        bytea NOT NULL,
    created_at  bigint NOT NULL,
    revoked     boolean NOT NULL
);
CREATE INDEX api_keys_hash ON api_keys (hash);
