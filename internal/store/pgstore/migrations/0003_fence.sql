-- tpwallet PostgreSQL schema, version 3: the fencing check as a function.
--
-- Every commit is one implicit transaction sent in one round trip, so its checks must fail
-- inside the database. tpwallet_fence(epoch) is the first statement of each: it holds the
-- leader row FOR SHARE until the transaction ends (a takeover's UPDATE of the row waits for
-- it) and raises SQLSTATE TW001, rolling the whole transaction back, unless the lease epoch
-- is still the one this instance acquired.
CREATE FUNCTION tpwallet_fence(want bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM leader WHERE epoch = want FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tpwallet: fenced: the leader lease is no longer at epoch %', want
            USING ERRCODE = 'TW001';
    END IF;
END
$$;
