//! MCP session owners in Redis, so a session opened through one replica is known to every other:
//! the same rules as the in-memory store, each step one script.
//!
//! Layout under the prefix: `s:{id}` a hash (`b` its bucket, `o` its owner when it has one);
//! `bs:{bucket}` the set of the bucket's sessions; `bp:{bucket}` its places (token → deadline,
//! ms); `pl:{token}` the bucket a place is in; `all` every session by last use (ms); `places`
//! every place by deadline.

use super::{RedisStore, failed};
use crate::{OpenSession, Result, SessionInfo, SessionStore, StoreError, async_trait, session_bucket};
use std::sync::LazyLock;

/// Functions every session script starts with. ARGV[1] is always the prefix.
const PRELUDE: &str = r#"
local P = ARGV[1]
local function give_back(tok)
  local b = redis.call('GET', P .. 'pl:' .. tok)
  if b then
    redis.call('ZREM', P .. 'bp:' .. b, tok)
    redis.call('DEL', P .. 'pl:' .. tok)
  end
  redis.call('ZREM', P .. 'places', tok)
end
local function lapse(b, now)
  local gone = redis.call('ZRANGEBYSCORE', P .. 'bp:' .. b, '-inf', now)
  for _, tok in ipairs(gone) do give_back(tok) end
end
local function finish(id)
  local b = redis.call('HGET', P .. 's:' .. id, 'b')
  if not b then return 0 end
  redis.call('SREM', P .. 'bs:' .. b, id)
  redis.call('DEL', P .. 's:' .. id)
  redis.call('ZREM', P .. 'all', id)
  return 1
end
"#;

/// ARGV: prefix, bucket, token, cap, now, until.
const RESERVE: &str = r#"
local b, tok, cap, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
lapse(b, now)
if redis.call('EXISTS', P .. 'pl:' .. tok) == 1 then return 0 end
if redis.call('SCARD', P .. 'bs:' .. b) + redis.call('ZCARD', P .. 'bp:' .. b) >= cap then return 0 end
redis.call('ZADD', P .. 'bp:' .. b, ARGV[6], tok)
redis.call('SET', P .. 'pl:' .. tok, b)
redis.call('ZADD', P .. 'places', ARGV[6], tok)
return 1
"#;

/// ARGV: prefix, token.
const RELEASE: &str = "give_back(ARGV[2]) return 0";

/// ARGV: prefix, id, bucket, 1 when there is an owner, owner, 1 when there is a place, its token,
/// now.
const OPEN: &str = r#"
local id, b = ARGV[2], ARGV[3]
if ARGV[6] == '1' then give_back(ARGV[7]) end
finish(id)
if ARGV[4] == '1' then
  redis.call('HSET', P .. 's:' .. id, 'b', b, 'o', ARGV[5])
else
  redis.call('HSET', P .. 's:' .. id, 'b', b)
end
redis.call('SADD', P .. 'bs:' .. b, id)
redis.call('ZADD', P .. 'all', ARGV[8], id)
return 1
"#;

/// ARGV: prefix, id, now. `{-1}`: no such session; `{0}`: opened without a credential;
/// `{1, owner}`.
const TOUCH: &str = r#"
local h = redis.call('HMGET', P .. 's:' .. ARGV[2], 'b', 'o')
if not h[1] then return {-1} end
redis.call('ZADD', P .. 'all', 'GT', ARGV[3], ARGV[2])
if h[2] then return {1, h[2]} end
return {0}
"#;

/// ARGV: prefix, id.
const CLOSE: &str = "return finish(ARGV[2])";

/// ARGV: prefix, bucket, now.
const COUNT: &str = r#"
lapse(ARGV[2], ARGV[3])
return redis.call('SCARD', P .. 'bs:' .. ARGV[2]) + redis.call('ZCARD', P .. 'bp:' .. ARGV[2])
"#;

/// ARGV: prefix, seen before (ms), now, batch. Ends up to `batch` idle sessions and lapses up to
/// `batch` places; returns `{sessions ended, places lapsed}`.
const PURGE: &str = r#"
local idle = redis.call('ZRANGEBYSCORE', P .. 'all', '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[4])
local ended = 0
for _, id in ipairs(idle) do
  if finish(id) == 1 then ended = ended + 1 else redis.call('ZREM', P .. 'all', id) end
end
local gone = redis.call('ZRANGEBYSCORE', P .. 'places', '-inf', ARGV[3], 'LIMIT', 0, ARGV[4])
for _, tok in ipairs(gone) do give_back(tok) end
return {ended, #gone, #idle}
"#;

/// ARGV: prefix, how many. The most recently seen sessions: id, last seen, 1 and the owner
/// when it has one (else 0 and "").
const LIST: &str = r#"
local out = {}
local ids = redis.call('ZREVRANGE', P .. 'all', 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
for i = 1, #ids, 2 do
  local o = redis.call('HGET', P .. 's:' .. ids[i], 'o')
  table.insert(out, ids[i])
  table.insert(out, ids[i + 1])
  if o then table.insert(out, '1') table.insert(out, o) else table.insert(out, '0') table.insert(out, '') end
end
return out
"#;

/// How many sessions (and places) one purge script handles, so it never holds Redis for long.
const PURGE_BATCH: usize = 1000;

struct Scripts {
    reserve: ::redis::Script,
    release: ::redis::Script,
    open: ::redis::Script,
    touch: ::redis::Script,
    close: ::redis::Script,
    count: ::redis::Script,
    purge: ::redis::Script,
    list: ::redis::Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let s = |body: &str| ::redis::Script::new(&format!("{PRELUDE}\n{body}"));
    Scripts {
        reserve: s(RESERVE),
        release: s(RELEASE),
        open: s(OPEN),
        touch: s(TOUCH),
        close: s(CLOSE),
        count: s(COUNT),
        purge: s(PURGE),
        list: s(LIST),
    }
});

fn count_of(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn reserve(&self, owner: Option<&str>, token: &str, cap: usize, now_ms: i64, until_ms: i64) -> Result<bool> {
        let won: i64 = SCRIPTS
            .reserve
            .arg(&self.prefix)
            .arg(session_bucket(owner))
            .arg(token)
            .arg(cap)
            .arg(now_ms)
            .arg(until_ms)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| failed("session place", &e))?;
        Ok(won == 1)
    }

    async fn release(&self, token: &str) -> Result<()> {
        let _: i64 = SCRIPTS
            .release
            .arg(&self.prefix)
            .arg(token)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| failed("session place", &e))?;
        Ok(())
    }

    async fn open(&self, id: &str, owner: Option<&str>, token: Option<&str>, now_ms: i64) -> Result<()> {
        let _: i64 = SCRIPTS
            .open
            .arg(&self.prefix)
            .arg(id)
            .arg(session_bucket(owner))
            .arg(u8::from(owner.is_some()))
            .arg(owner.unwrap_or(""))
            .arg(u8::from(token.is_some()))
            .arg(token.unwrap_or(""))
            .arg(now_ms)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| failed("session open", &e))?;
        Ok(())
    }

    async fn touch(&self, id: &str, now_ms: i64) -> Result<Option<OpenSession>> {
        let answer: Vec<::redis::Value> = SCRIPTS
            .touch
            .arg(&self.prefix)
            .arg(id)
            .arg(now_ms)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| failed("session lookup", &e))?;
        match answer.as_slice() {
            [::redis::Value::Int(-1)] => Ok(None),
            [::redis::Value::Int(0)] => Ok(Some(OpenSession { owner: None })),
            [::redis::Value::Int(1), owner] => {
                let owner: String = ::redis::from_redis_value_ref(owner)
                    .map_err(|_| StoreError::Backend("redis: session lookup: the owner is not text".into()))?;
                Ok(Some(OpenSession { owner: Some(owner) }))
            }
            _ => Err(StoreError::Backend("redis: session lookup: unexpected answer".into())),
        }
    }

    async fn close(&self, id: &str) -> Result<bool> {
        let ended: i64 = SCRIPTS
            .close
            .arg(&self.prefix)
            .arg(id)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| failed("session close", &e))?;
        Ok(ended == 1)
    }

    async fn count(&self, owner: Option<&str>, now_ms: i64) -> Result<usize> {
        let n: i64 = SCRIPTS
            .count
            .arg(&self.prefix)
            .arg(session_bucket(owner))
            .arg(now_ms)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| failed("session count", &e))?;
        Ok(count_of(n))
    }

    async fn total(&self) -> Result<usize> {
        let n: i64 = ::redis::cmd("ZCARD")
            .arg(format!("{}all", self.prefix))
            .query_async(&mut self.conn())
            .await
            .map_err(|e| failed("session total", &e))?;
        Ok(count_of(n))
    }

    async fn list(&self, limit: usize) -> Result<Vec<SessionInfo>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let flat: Vec<String> = SCRIPTS
            .list
            .arg(&self.prefix)
            .arg(limit.min(100_000))
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| failed("session list", &e))?;
        flat.chunks(4)
            .map(|c| match c {
                [id, seen, has, owner] => Ok(SessionInfo {
                    id: id.clone(),
                    owner: (has == "1").then(|| owner.clone()),
                    last_seen_ms: seen.parse::<f64>().map_or(0, |v| v as i64),
                }),
                _ => Err(StoreError::Backend("redis: session list: unexpected answer".into())),
            })
            .collect()
    }

    async fn purge_idle(&self, seen_before_ms: i64, now_ms: i64) -> Result<usize> {
        let mut ended = 0;
        loop {
            let answer: Vec<i64> = SCRIPTS
                .purge
                .arg(&self.prefix)
                .arg(seen_before_ms)
                .arg(now_ms)
                .arg(PURGE_BATCH)
                .invoke_async(&mut self.conn())
                .await
                .map_err(|e| failed("session purge", &e))?;
            let [n, places, seen] = answer.as_slice() else {
                return Err(StoreError::Backend("redis: session purge: unexpected answer".into()));
            };
            ended += count_of(*n);
            if count_of(*seen) < PURGE_BATCH && count_of(*places) < PURGE_BATCH {
                return Ok(ended);
            }
        }
    }
}
