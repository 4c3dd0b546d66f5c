//! The script that records a finished run on Redis: one atomic step per run, pipelined.

use super::{RunRecord, bucket_of, json, key};
use crate::store::Outcome;

/// KEYS: running, runs list, last, last_success, timeline, stop, last_started. ARGV: run id, record,
/// job, started ms, success ms or '', timeline field, history, fence.
pub(super) const FINISHED: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[7]) - 1)
local previous = tonumber(redis.call('HGET', KEYS[7], ARGV[3]) or '-1')
if tonumber(ARGV[4]) >= previous then
    redis.call('HSET', KEYS[3], ARGV[3], ARGV[2])
    redis.call('HSET', KEYS[7], ARGV[3], ARGV[4])
end
if ARGV[5] ~= '' then
    local success = tonumber(redis.call('HGET', KEYS[4], ARGV[3]) or '0')
    if tonumber(ARGV[5]) > success then redis.call('HSET', KEYS[4], ARGV[3], ARGV[5]) end
end
redis.call('HINCRBY', KEYS[5], ARGV[6], 1)
local fence = redis.call('HGET', KEYS[6], ARGV[3])
if fence and tonumber(fence) <= tonumber(ARGV[8]) then redis.call('HDEL', KEYS[6], ARGV[3]) end
return 1
";

/// `EVALSHA` of the finished-run script, for a pipeline.
pub(super) fn evalsha(script: &redis::Script, run: &RunRecord, history: usize) -> redis::Cmd {
    let keys = [
        key("running"),
        key(&format!("runs:{}", run.job)),
        key("last"),
        key("last_success"),
        key(&format!("timeline:{}", run.job)),
        key("stop"),
        key("last_started"),
    ];
    let success =
        if run.outcome == Outcome::Success { run.finished_ms.map(|ms| ms.to_string()) } else { None };
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len());
    for k in keys {
        cmd.arg(k);
    }
    cmd.arg(&run.run_id)
        .arg(json(run))
        .arg(&run.job)
        .arg(run.started_ms)
        .arg(success.unwrap_or_default())
        .arg(format!("{}:{}", bucket_of(run.started_ms), run.outcome.as_str()))
        .arg(history)
        .arg(run.fence);
    cmd
}
