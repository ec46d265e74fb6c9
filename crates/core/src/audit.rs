//! Audit records: one per authentication decision and per MCP call. A record names who, what and
//! the outcome — never a credential: principals appear by key id and user id only.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    /// Unix milliseconds.
    pub time_ms: i64,
    pub request_id: String,
    /// `auth` (a decision that stopped the request) or `call` (a request that went upstream).
    pub event: String,
    pub principal: Option<String>,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    pub tenant: Option<String>,
    /// How the caller authenticated (`api_key`, `anonymous`, …).
    pub auth_method: Option<String>,
    pub client_addr: Option<String>,
    pub mcp_method: Option<String>,
    pub tool: Option<String>,
    /// `allow`, `deny`, `limited` or `error`.
    pub decision: String,
    pub reason: String,
    pub status: u16,
    pub latency_us: u64,
    /// The OAuth client, for tokens this gateway's authorization server issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Filters for `mcpgate audit` and the admin API. Every filter is an exact match; `None` matches
/// anything.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Records at or after this time (unix ms).
    pub since_ms: Option<i64>,
    /// Records before this time (unix ms).
    pub until_ms: Option<i64>,
    pub user: Option<String>,
    pub tool: Option<String>,
    pub decision: Option<String>,
    pub key_id: Option<String>,
    pub client_id: Option<String>,
    /// `auth`, `call` or `admin`.
    pub event: Option<String>,
    /// Records numbered below this (a cursor: the number of the oldest record of the page before).
    pub before: Option<u64>,
    /// How many (100 when 0).
    pub limit: usize,
}

impl AuditQuery {
    /// The filter, as every backend applies it (the numbering cursor aside).
    pub fn matches(&self, r: &AuditRecord) -> bool {
        fn same(want: &Option<String>, have: Option<&String>) -> bool {
            want.as_ref().is_none_or(|w| have == Some(w))
        }
        self.since_ms.is_none_or(|t| r.time_ms >= t)
            && self.until_ms.is_none_or(|t| r.time_ms < t)
            && same(&self.user, r.user_id.as_ref())
            && same(&self.tool, r.tool.as_ref())
            && same(&self.decision, Some(&r.decision))
            && same(&self.key_id, r.key_id.as_ref())
            && same(&self.client_id, r.client_id.as_ref())
            && same(&self.event, Some(&r.event))
    }

    /// The page size asked for: 100 when 0.
    pub fn page_size(&self) -> usize {
        if self.limit == 0 { 100 } else { self.limit }
    }
}

/// What usage is counted by, besides time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Key,
    User,
    Tool,
    Client,
    /// Why requests were refused or limited (the record's reason).
    Reason,
}

impl Dimension {
    pub fn parse(s: &str) -> Option<Dimension> {
        Some(match s {
            "key" => Dimension::Key,
            "user" => Dimension::User,
            "tool" => Dimension::Tool,
            "client" => Dimension::Client,
            "reason" => Dimension::Reason,
            _ => return None,
        })
    }

    /// The value as an SQL expression over the audit table's columns (fixed text, never input:
    /// SQL backends put it in their statements).
    pub fn sql(self) -> &'static str {
        match self {
            Dimension::Key => "key_id",
            Dimension::User => "user_id",
            Dimension::Tool => "tool",
            Dimension::Client => "client_id",
            Dimension::Reason => "CASE WHEN decision = 'allow' THEN NULL ELSE reason END",
        }
    }

    /// The record's value along this dimension.
    pub fn of(self, r: &AuditRecord) -> Option<&str> {
        match self {
            Dimension::Key => r.key_id.as_deref(),
            Dimension::User => r.user_id.as_deref(),
            Dimension::Tool => r.tool.as_deref(),
            Dimension::Client => r.client_id.as_deref(),
            Dimension::Reason => (r.decision != "allow").then_some(r.reason.as_str()),
        }
    }
}

/// A usage report: requests per time bucket and the busiest values of one dimension, each split
/// by decision. Counted from the audit records of `auth` and `call` events (admin actions are
/// not traffic).
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub since_ms: i64,
    pub until_ms: i64,
    /// Bucket width (ms), at least 1.
    pub bucket_ms: i64,
    pub by: Dimension,
    /// How many values of `by` (the busiest first).
    pub top: usize,
}

/// Requests by decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub allow: u64,
    pub deny: u64,
    pub limited: u64,
    pub error: u64,
}

impl Counts {
    pub fn add(&mut self, decision: &str, n: u64) {
        match decision {
            "allow" => self.allow += n,
            "deny" => self.deny += n,
            "limited" => self.limited += n,
            _ => self.error += n,
        }
    }

    pub fn total(&self) -> u64 {
        self.allow + self.deny + self.limited + self.error
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub start_ms: i64,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Top {
    pub value: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Every bucket from `since_ms`, empty ones included, oldest first.
    pub buckets: Vec<Bucket>,
    /// The busiest values of the dimension (most requests first, then by value).
    pub top: Vec<Top>,
    pub total: Counts,
}

/// The most buckets a report may have.
pub const MAX_BUCKETS: i64 = 10_000;

impl UsageQuery {
    /// How many buckets the window holds (0 for an empty window).
    pub fn bucket_count(&self) -> usize {
        let span = self.until_ms.saturating_sub(self.since_ms).max(0);
        let width = self.bucket_ms.max(1);
        usize::try_from((span.saturating_add(width - 1) / width).min(MAX_BUCKETS)).unwrap_or(0)
    }

    /// Whether a record counts: traffic inside the window.
    pub fn counts(&self, r: &AuditRecord) -> bool {
        r.time_ms >= self.since_ms && r.time_ms < self.until_ms && r.event != "admin"
    }

    /// A report from grouped counts: `(bucket index, decision, n)` and `(value, decision, n)`,
    /// as SQL backends read them (and [`Usage::tally`] makes them).
    pub fn assemble(
        &self,
        per_bucket: impl IntoIterator<Item = (i64, String, u64)>,
        per_value: impl IntoIterator<Item = (String, String, u64)>,
    ) -> Usage {
        let width = self.bucket_ms.max(1);
        let mut buckets: Vec<Bucket> = (0..self.bucket_count())
            .map(|i| Bucket {
                start_ms: self.since_ms + width * i as i64,
                counts: Counts::default(),
            })
            .collect();
        let mut total = Counts::default();
        for (i, decision, n) in per_bucket {
            total.add(&decision, n);
            if let Some(b) = usize::try_from(i).ok().and_then(|i| buckets.get_mut(i)) {
                b.counts.add(&decision, n);
            }
        }
        let mut values: std::collections::HashMap<String, Counts> = std::collections::HashMap::new();
        for (v, decision, n) in per_value {
            values.entry(v).or_default().add(&decision, n);
        }
        let mut top: Vec<Top> = values
            .into_iter()
            .map(|(value, counts)| Top { value, counts })
            .collect();
        top.sort_by(|a, b| {
            b.counts
                .total()
                .cmp(&a.counts.total())
                .then_with(|| a.value.cmp(&b.value))
        });
        top.truncate(self.top);
        Usage { buckets, top, total }
    }
}

impl Usage {
    /// The report over `records` (any order): what every backend must answer.
    pub fn tally<'a>(q: &UsageQuery, records: impl IntoIterator<Item = &'a AuditRecord>) -> Usage {
        let width = q.bucket_ms.max(1);
        let mut per_bucket = Vec::new();
        let mut per_value = Vec::new();
        for r in records.into_iter().filter(|r| q.counts(r)) {
            per_bucket.push(((r.time_ms - q.since_ms) / width, r.decision.clone(), 1));
            if let Some(v) = q.by.of(r) {
                per_value.push((v.to_string(), r.decision.clone(), 1));
            }
        }
        q.assemble(per_bucket, per_value)
    }
}
