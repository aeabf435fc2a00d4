-- tpwallet PostgreSQL schema, version 4: fewer indexes on transfers.
--
-- transfers_source and transfers_destination were written with every transfer but read by
-- nothing: an account's transfers are listed through activity (PRIMARY KEY (account,
-- time); its create rows name the transfer), which every transfer writes anyway. Index
-- inserts were the largest single cost of a commit in PostgreSQL (docs/benchmarks.md).
-- Analysts: find an account's transfers with
--   SELECT t.* FROM activity a JOIN transfers t ON t.id = a.transfer_id
--    WHERE a.account = 'alice-usd' AND a.op = 'create' ORDER BY a.time DESC;
DROP INDEX transfers_source;
DROP INDEX transfers_destination;
