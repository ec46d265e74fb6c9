//! Rate limits and quotas in Redis: the same decisions as the in-process limiter (GCRA per minute
//! and per hour — a burst of the full limit, then a steady rate —, a counter per UTC day), made by
//! one script per request over the principal's windows and the tool's, so a request is counted
//! only when every window admits it, exactly, whichever replica asks.
//!
//! A principal's state is a hash `{prefix}l:{principal}` with fields `m` and `h` (theoretical
//! arrival times, µs), `d` (the UTC day of the quota count) and `c` (the count); a tool's is
//! `{prefix}t:{principal length}:{principal}:{tool}` (the length keeps principal and tool apart
//! whatever characters they hold). A state expires once it would decide as a fresh one would.

use super::{RedisStore, failed};
use crate::{LimitStore, Result, StoreError, async_trait};
use mcpgate_core::principal::Limits;
use mcpgate_core::ratelimit::{HOUR_US, Limited, MINUTE_US, Now, Remaining, gcra_remaining};
use std::sync::LazyLock;

/// KEYS[1]: the principal's state; KEYS[2]: the tool's (only read when ARGV[6] is 1).
/// ARGV: now (µs), unix seconds, the principal's per-minute, per-hour and per-day limits (-1: none),
/// 1 when a tool is limited, the tool's three limits.
/// Returns `{1}` when admitted, else `{0, window (1 minute, 2 hour, 3 day), limit, wait µs,
/// 1 when the tool's window refused}`.
const CHECK: &str = r#"
local now = tonumber(ARGV[1])
local unix = tonumber(ARGV[2])
local day = math.floor(unix / 86400)
local MINUTE, HOUR = 60000000, 3600000000
local function take(tat, limit, period)
  local t = math.floor(period / math.max(limit, 1))
  local tau = period - t
  if tat < now then tat = now end
  if tat - now > tau then return nil, tat - now - tau end
  return tat + t, 0
end
local function admit(key, pm, ph, pd)
  local s = redis.call('HMGET', key, 'm', 'h', 'd', 'c')
  local m, h = tonumber(s[1]) or 0, tonumber(s[2]) or 0
  local d, c = tonumber(s[3]) or -1, tonumber(s[4]) or 0
  local w
  if pm >= 0 then
    m, w = take(m, pm, MINUTE)
    if not m then return nil, {1, pm, w} end
  end
  if ph >= 0 then
    h, w = take(h, ph, HOUR)
    if not h then return nil, {2, ph, w} end
  end
  if d ~= day then c = 0 end
  if pd >= 0 then
    if c >= pd then return nil, {3, pd, ((day + 1) * 86400 - unix) * 1000000} end
    d, c = day, c + 1
  end
  return {m, h, d, c}, nil
end
local function store(key, st)
  local f = function(x) return string.format('%.0f', x) end
  redis.call('HSET', key, 'm', f(st[1]), 'h', f(st[2]), 'd', f(st[3]), 'c', f(st[4]))
  local rest = math.max(st[1] - now, st[2] - now, 0)
  if st[4] > 0 then rest = math.max(rest, ((st[3] + 1) * 86400 - unix) * 1000000) end
  redis.call('PEXPIRE', key, math.floor(rest / 1000) + 1000)
end
local own, why = admit(KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
if not own then return {0, why[1], why[2], why[3], 0} end
local tool = nil
if ARGV[6] == '1' then
  tool, why = admit(KEYS[2], tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]))
  if not tool then return {0, why[1], why[2], why[3], 1} end
end
store(KEYS[1], own)
if tool then store(KEYS[2], tool) end
return {1}
"#;

static CHECK_SCRIPT: LazyLock<::redis::Script> = LazyLock::new(|| ::redis::Script::new(CHECK));

impl RedisStore {
    fn own_key(&self, principal: &str) -> String {
        format!("{}l:{principal}", self.prefix)
    }

    fn tool_key(&self, principal: &str, tool: &str) -> String {
        format!("{}t:{}:{principal}:{tool}", self.prefix, principal.len())
    }
}

/// A limit as the script reads it: -1 for none.
fn arg(limit: Option<u32>) -> i64 {
    limit.map_or(-1, i64::from)
}

#[async_trait]
impl LimitStore for RedisStore {
    async fn check(
        &self,
        principal: &str,
        limits: &Limits,
        tool: Option<(&str, &Limits)>,
        now: Now,
    ) -> Result<std::result::Result<(), Limited>> {
        let none = Limits::default();
        let tool = tool.filter(|(_, l)| **l != none);
        if *limits == none && tool.is_none() {
            return Ok(Ok(()));
        }
        let (tool_name, tool_limits) = match tool {
            Some((name, l)) => (Some(name), *l),
            None => (None, none),
        };
        let own_key = self.own_key(principal);
        let tool_key = tool_name.map_or_else(|| own_key.clone(), |t| self.tool_key(principal, t));
        let answer: Vec<i64> = CHECK_SCRIPT
            .key(&own_key)
            .key(&tool_key)
            .arg(now.mono_us)
            .arg(now.unix_s)
            .arg(arg(limits.per_minute))
            .arg(arg(limits.per_hour))
            .arg(arg(limits.per_day))
            .arg(u8::from(tool_name.is_some()))
            .arg(arg(tool_limits.per_minute))
            .arg(arg(tool_limits.per_hour))
            .arg(arg(tool_limits.per_day))
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| failed("rate-limit check", &e))?;
        match answer.as_slice() {
            [1] => Ok(Ok(())),
            [0, window, limit, wait_us, by_tool] => {
                let window = match window {
                    1 => "per-minute",
                    2 => "per-hour",
                    _ => "daily quota",
                };
                Ok(Err(Limited {
                    window,
                    tool: if *by_tool == 1 {
                        tool_name.map(str::to_string)
                    } else {
                        None
                    },
                    limit: u32::try_from(*limit).unwrap_or(u32::MAX),
                    retry_after_s: u64::try_from((wait_us + 999_999) / 1_000_000).unwrap_or(1).max(1),
                }))
            }
            _ => Err(StoreError::Backend("redis: rate-limit check: unexpected answer".into())),
        }
    }

    async fn remaining(&self, principal: &str, limits: &Limits, now: Now) -> Result<Remaining> {
        let mut c = self.conn();
        let state: Vec<Option<i64>> = ::redis::cmd("HMGET")
            .arg(self.own_key(principal))
            .arg(&["m", "h", "d", "c"])
            .query_async(&mut c)
            .await
            .map_err(|e| failed("rate-limit state", &e))?;
        let field = |i: usize| state.get(i).copied().flatten();
        let day = now.unix_s.div_euclid(86_400);
        let used_today = if field(2) == Some(day) {
            field(3).unwrap_or(0)
        } else {
            0
        };
        Ok(Remaining {
            per_minute: limits
                .per_minute
                .map(|l| gcra_remaining(field(0).unwrap_or(0), l, MINUTE_US, now.mono_us)),
            per_hour: limits
                .per_hour
                .map(|l| gcra_remaining(field(1).unwrap_or(0), l, HOUR_US, now.mono_us)),
            per_day: limits
                .per_day
                .map(|l| l.saturating_sub(u32::try_from(used_today).unwrap_or(u32::MAX))),
        })
    }
}
