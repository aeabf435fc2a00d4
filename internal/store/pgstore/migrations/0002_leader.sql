-- tpwallet PostgreSQL schema, version 2: the leader lease.
--
-- leader: exactly one row. The instance whose epoch is in it is the only one whose commits
-- are accepted: every Commit transaction reads this row (FOR SHARE) and fails unless epoch
-- is the epoch its instance acquired. A takeover increments epoch, so the previous holder,
-- even paused or partitioned, can never commit again (docs/postgres.md, "Fencing").
-- Times are the database's clock (timestamptz), so instances need no clock agreement.
CREATE TABLE leader (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch        bigint NOT NULL,        -- fencing token: 0 until first taken, +1 at each takeover
    holder       text NOT NULL,          -- instance id of the holder ('' before the first)
    address      text NOT NULL,          -- where clients reach the holder ('' when not advertised)
    acquired_at  timestamptz,            -- when this epoch began
    expires_at   timestamptz NOT NULL    -- the lease lapses at this time unless renewed
);
INSERT INTO leader (epoch, holder, address, expires_at) VALUES (0, '', '', '-infinity');
