//! The statements, one per call (see the module above for what each does).

/// The database's clock in milliseconds since the Unix epoch.
macro_rules! now_ms {
    () => {
        "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS chime_durable (
    key text PRIMARY KEY, handler text NOT NULL, payload bytea NOT NULL, due_ms bigint NOT NULL,
    grace_ms bigint, state smallint NOT NULL, attempt integer NOT NULL, fence bigint NOT NULL,
    owner text, ready_ms bigint NOT NULL, error text);
CREATE INDEX IF NOT EXISTS chime_durable_live ON chime_durable (handler, ready_ms) WHERE state IN (0, 1);
CREATE INDEX IF NOT EXISTS chime_durable_state ON chime_durable (state, ready_ms, key COLLATE "C");
CREATE SEQUENCE IF NOT EXISTS chime_durable_fence;
CREATE TABLE IF NOT EXISTS chime_durable_handlers (handler text PRIMARY KEY);
"#;

pub(super) const COLUMNS: &str =
    "key, handler, payload, due_ms, grace_ms, state, attempt, fence, owner, ready_ms, error";

pub(super) const CREATE: &str = "
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int8[], $5::int8[])
        WITH ORDINALITY AS t(key, handler, payload, due_ms, grace_ms, n)
), handlers AS (
    INSERT INTO chime_durable_handlers (handler) SELECT DISTINCT handler FROM input ON CONFLICT DO NOTHING
)
INSERT INTO chime_durable (key, handler, payload, due_ms, grace_ms, state, attempt, fence, owner, ready_ms, error)
SELECT key, handler, payload, due_ms, grace_ms, 0, 0, 0, NULL, due_ms, NULL FROM input ORDER BY n
ON CONFLICT (key) DO NOTHING
RETURNING key";

pub(super) const CLAIM: &str = concat!(
    "WITH now AS MATERIALIZED (SELECT ",
    now_ms!(),
    " AS ms),
due AS (
    SELECT x.key FROM now, unnest($1::text[]) AS h(name),
    LATERAL (SELECT d.key, d.ready_ms FROM chime_durable d
             WHERE d.handler = h.name AND d.state IN (0, 1) AND d.ready_ms <= now.ms
             ORDER BY d.ready_ms LIMIT $2 FOR UPDATE SKIP LOCKED) x
    ORDER BY x.ready_ms, x.key LIMIT $2
),
decided AS (
    SELECT d.key, CASE
        WHEN d.attempt = 0 AND now.ms - d.due_ms > COALESCE(d.grace_ms, $6) THEN 'skipped'
        WHEN d.attempt >= $5 THEN 'exhausted'
        ELSE 'run' END AS decision
    FROM chime_durable d JOIN due USING (key), now
)
UPDATE chime_durable d SET
    state = CASE c.decision WHEN 'skipped' THEN 5 WHEN 'exhausted' THEN 3 ELSE 1 END,
    attempt = CASE c.decision WHEN 'run' THEN d.attempt + 1 ELSE d.attempt END,
    fence = CASE c.decision WHEN 'run' THEN nextval('chime_durable_fence') ELSE d.fence END,
    owner = CASE c.decision WHEN 'run' THEN $3 ELSE NULL END,
    ready_ms = CASE c.decision WHEN 'run' THEN now.ms + $4 ELSE now.ms END,
    error = CASE c.decision
        WHEN 'skipped' THEN format('skipped: its first run would have started %s ms late (grace %s ms)',
            now.ms - d.due_ms, COALESCE(d.grace_ms, $6))
        WHEN 'exhausted' THEN format('attempt %s never finished (its scheduler died or lost the store) and no attempts are left', d.attempt)
        ELSE d.error END
FROM decided c, now
WHERE d.key = c.key
RETURNING d.key, d.handler, d.payload, d.due_ms, d.grace_ms, d.state, d.attempt, d.fence, d.owner, d.ready_ms,
    d.error, c.decision"
);

/// The store's clock and the next claimable time of `$1`'s handlers.
pub(super) const NEXT: &str = concat!(
    "SELECT ",
    now_ms!(),
    ", (SELECT min(x.ready_ms) FROM unnest($1::text[]) AS h(name),
        LATERAL (SELECT ready_ms FROM chime_durable WHERE handler = h.name AND state IN (0, 1)
                 ORDER BY ready_ms LIMIT 1) x)"
);

pub(super) const RENEW: &str = concat!(
    "UPDATE chime_durable d SET ready_ms = ",
    now_ms!(),
    " + $4
FROM unnest($1::text[], $2::int8[]) AS r(key, fence)
WHERE d.key = r.key AND d.fence = r.fence AND d.state = 1 AND d.owner = $3
RETURNING d.key"
);

/// Kinds: 0 fired, 1 retry, 2 failed, 3 released. The last SELECT sees the rows as they were before
/// the update (one snapshot): a run is recorded when it updated its row now, or its row already
/// holds its fence and is no longer running (an earlier try was recorded, or it was cancelled).
pub(super) const FINISH: &str = concat!(
    "WITH now AS MATERIALIZED (SELECT ",
    now_ms!(),
    " AS ms),
r AS (SELECT * FROM unnest($1::text[], $2::int8[], $3::int2[], $4::int8[], $5::text[]) AS r(key, fence, kind, delay_ms, error)),
done AS (
    UPDATE chime_durable d SET
        state = CASE r.kind WHEN 0 THEN 2 WHEN 2 THEN 3 ELSE 0 END,
        attempt = CASE r.kind WHEN 3 THEN greatest(d.attempt - 1, 0) ELSE d.attempt END,
        owner = NULL,
        ready_ms = CASE r.kind WHEN 1 THEN now.ms + r.delay_ms ELSE now.ms END,
        error = CASE r.kind WHEN 0 THEN NULL WHEN 3 THEN d.error ELSE r.error END
    FROM r, now
    WHERE d.key = r.key AND d.fence = r.fence AND d.state = 1 AND d.owner = $6
    RETURNING d.key
)
SELECT r.key, r.key IN (SELECT key FROM done)
    OR EXISTS (SELECT 1 FROM chime_durable d WHERE d.key = r.key AND d.fence = r.fence AND d.state <> 1)
FROM r"
);

pub(super) const CANCEL: &str = concat!(
    "UPDATE chime_durable SET state = 4, owner = NULL, ready_ms = ",
    now_ms!(),
    " WHERE key = $1 AND state IN (0, 1, 3) RETURNING key"
);

pub(super) const PURGE: &str = "WITH gone AS (
    DELETE FROM chime_durable WHERE key IN (
        SELECT key FROM chime_durable WHERE state IN (2, 4, 5) AND ready_ms < $1 LIMIT $2)
    RETURNING 1)
SELECT count(*) FROM gone";

pub(super) const UNKNOWN: &str = concat!(
    "SELECT h.handler, (SELECT count(*) FROM chime_durable d
        WHERE d.handler = h.handler AND d.state IN (0, 1) AND d.ready_ms <= ",
    now_ms!(),
    ") FROM chime_durable_handlers h WHERE NOT (h.handler = ANY($1))"
);
