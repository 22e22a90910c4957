//! The shared store: Redis or Valkey, one atomic server-side script per client exchange,
//! settlements of many clients pipelined in one round trip.

use std::time::{Duration, SystemTime};

use ai_api_proxy_config::SharedLimits;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, IntoConnectionInfo, RedisConnectionInfo, Script, ServerErrorKind};

use super::dims::{Dim, Limits, window};
use super::lease::{Ask, Outcome};

/// Takes and gives back allowances for one client, atomically.
///
/// KEYS: one per limited dimension. ARGV, six per key: kind (`r`: a bucket refilling `cap`
/// per minute; `b`: a budget counter of used tokens), cap, need, want, delta (applied first:
/// positive gives back, negative charges), and the budget key's lifetime in seconds.
/// Grants every `want` (capped by what is there) only if every `need` is there.
/// Returns `ok` then, per key, granted, left and milliseconds until `need` would be there.
/// The server's clock is the only clock, so replicas never disagree about refills.
const EXCHANGE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local level, ok = {}, 1
for i = 1, #KEYS do
  local b = (i - 1) * 6
  local kind, cap, need, delta = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 5])
  local l
  if kind == 'r' then
    local s = redis.call('HMGET', KEYS[i], 'l', 't')
    l = tonumber(s[1]) or cap
    l = math.min(cap, l + math.max(0, now - (tonumber(s[2]) or now)) * cap / 60000)
    l = math.min(cap, l + delta)
  else
    l = cap - (tonumber(redis.call('GET', KEYS[i])) or 0) + delta
  end
  level[i] = l
  if l < need then ok = 0 end
end
local out = {ok}
for i = 1, #KEYS do
  local b = (i - 1) * 6
  local kind, cap, need, want, delta = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  local grant = 0
  if ok == 1 then grant = math.max(0, math.min(want, math.floor(level[i]))) end
  local l = level[i] - grant
  local wait = 0
  if kind == 'r' then
    redis.call('HSET', KEYS[i], 'l', tostring(l), 't', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil((cap - l) * 60000 / cap) + 1000)
    if level[i] < need then wait = math.ceil((need - level[i]) * 60000 / cap) end
  else
    redis.call('INCRBY', KEYS[i], grant - delta)
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[b + 6]))
  end
  out[#out + 1] = grant
  out[#out + 1] = math.floor(l)
  out[#out + 1] = wait
end
return out
";

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connection refused, reset, or an error reply.
    #[error("shared limits store: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within `lease.timeout`.
    #[error("shared limits store: no answer within {0:?}")]
    Timeout(Duration),
    /// The script answered something else than it returns.
    #[error("shared limits store: unexpected answer")]
    Shape,
}

/// A connection to the shared store (reconnects by itself).
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    script: Script,
    prefix: String,
    timeout: Duration,
}

/// One client's exchange: its id, limits and what to ask per dimension.
pub struct Request<'a> {
    /// Client id.
    pub client: &'a str,
    /// Its limits (dimensions without a cap are left out).
    pub limits: &'a Limits,
    /// What to ask.
    pub ask: [Ask; 4],
}

impl Store {
    /// Prepares a connection; it is made on first use, so the proxy starts without the store.
    /// Must run inside a tokio runtime that lives as long as the store (it drives the socket).
    pub fn connect(cfg: &SharedLimits, password: Option<&str>) -> Result<Self, StoreError> {
        let (host, port) = cfg.host_port().ok_or(StoreError::Shape)?;
        let mut redis = RedisConnectionInfo::default();
        if let Some(user) = &cfg.username {
            redis = redis.set_username(user);
        }
        if let Some(password) = password {
            redis = redis.set_password(password);
        }
        let info = (host.to_owned(), port)
            .into_connection_info()?
            .set_redis_settings(redis);
        let timeout = cfg.lease.timeout.get();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(redis::Client::open(info)?, config)?;
        Ok(Self {
            conn,
            script: Script::new(EXCHANGE),
            prefix: cfg.key_prefix.clone(),
            timeout,
        })
    }

    /// One exchange, waited for at most `lease.timeout`.
    pub async fn exchange(
        &self,
        req: &Request<'_>,
        now: SystemTime,
    ) -> Result<(Outcome, [String; 2]), StoreError> {
        let windows = windows(now);
        let mut invocation = self.script.prepare_invoke();
        self.fill(&mut invocation, req, now);
        let mut conn = self.conn.clone();
        let reply: Vec<i64> =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
                .await
                .map_err(|_| StoreError::Timeout(self.timeout))??;
        Ok((outcome(req, &reply)?, windows))
    }

    /// Many exchanges in one pipelined round trip (settlements).
    pub async fn exchange_many(
        &self,
        reqs: &[Request<'_>],
        now: SystemTime,
    ) -> Result<(Vec<Outcome>, [String; 2]), StoreError> {
        let windows = windows(now);
        if reqs.is_empty() {
            return Ok((Vec::new(), windows));
        }
        let mut invocations = Vec::with_capacity(reqs.len());
        for req in reqs {
            let mut inv = self.script.prepare_invoke();
            self.fill(&mut inv, req, now);
            invocations.push(inv);
        }
        let mut pipe = redis::pipe();
        for inv in &invocations {
            pipe.invoke_script(inv);
        }
        let mut conn = self.conn.clone();
        let run = async {
            match pipe.query_async::<Vec<Vec<i64>>>(&mut conn).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    // A restarted server forgot the script: load it once, send again.
                    self.script.prepare_invoke().load_async(&mut conn).await?;
                    pipe.query_async::<Vec<Vec<i64>>>(&mut conn).await
                }
                other => other,
            }
        };
        let replies = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))??;
        if replies.len() != reqs.len() {
            return Err(StoreError::Shape);
        }
        let outcomes = reqs
            .iter()
            .zip(&replies)
            .map(|(req, reply)| outcome(req, reply))
            .collect::<Result<_, _>>()?;
        Ok((outcomes, windows))
    }

    /// Is the store answering?
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        tokio::time::timeout(
            self.timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map_err(|_| StoreError::Timeout(self.timeout))??;
        Ok(())
    }

    fn fill(&self, inv: &mut redis::ScriptInvocation<'_>, req: &Request<'_>, now: SystemTime) {
        for dim in Dim::ALL {
            let Some(cap) = req.limits.cap(dim) else {
                continue;
            };
            let ask = req.ask[dim.index()];
            // `{client}` is a hash tag: a client's keys stay in one Redis Cluster slot.
            let (key, kind, ttl) = if dim.is_rate() {
                let name = if dim == Dim::Requests { "rpm" } else { "tpm" };
                (format!("{}:{{{}}}:{name}", self.prefix, req.client), "r", 0)
            } else {
                let w = window(dim, now);
                (
                    format!("{}:{{{}}}:{}", self.prefix, req.client, w.id),
                    "b",
                    w.left.as_secs() + 3600,
                )
            };
            inv.key(key);
            inv.arg(kind)
                .arg(cap)
                .arg(ask.need)
                .arg(ask.want.max(ask.need))
                .arg(ask.delta)
                .arg(ttl);
        }
    }
}

fn windows(now: SystemTime) -> [String; 2] {
    [window(Dim::Day, now).id, window(Dim::Month, now).id]
}

/// Reads the script's reply back into the dimensions that were sent.
fn outcome(req: &Request<'_>, reply: &[i64]) -> Result<Outcome, StoreError> {
    let (&ok, mut rest) = reply.split_first().ok_or(StoreError::Shape)?;
    let mut out = Outcome {
        ok: ok == 1,
        ..Outcome::default()
    };
    for dim in Dim::ALL {
        if req.limits.cap(dim).is_none() {
            continue;
        }
        let [grant, left, wait_ms, ..] = rest else {
            return Err(StoreError::Shape);
        };
        let i = dim.index();
        out.grant[i] = u64::try_from(*grant).unwrap_or(0);
        out.left[i] = *left as f64;
        out.wait[i] = Duration::from_millis(u64::try_from(*wait_ms).unwrap_or(0));
        rest = &rest[3..];
    }
    Ok(out)
}
