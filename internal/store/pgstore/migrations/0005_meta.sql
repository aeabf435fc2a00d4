-- tpwallet PostgreSQL schema, version 5: the state of the journal's followers.
--
-- store.Meta: a small key-value space beside the ledger, in namespaces, written by what
-- follows the journal (event publishers, webhook deliveries) rather than by the engine:
-- follower cursors, webhook endpoints, delivery logs and dead letters. Values are the JSON
-- documents docs/events.md describes; keys order bytewise (COLLATE "C").
CREATE TABLE meta (
    ns    text  NOT NULL,
    key   text  COLLATE "C" NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (ns, key)
);
