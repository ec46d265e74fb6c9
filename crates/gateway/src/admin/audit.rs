//! `/admin/api/v1/audit` (search, pages backwards by cursor; `format=jsonl|csv` streams an
//! export) and `/admin/api/v1/usage` (requests per time bucket and the busiest keys, users,
//! tools, clients or refusal reasons, by decision).

use super::{Action, ApiError, act, json, query};
use crate::Gateway;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use mcpgate_core::audit::{AuditQuery, AuditRecord, Dimension, MAX_BUCKETS, UsageQuery};
use mcpgate_core::time::{format_rfc3339, parse_rfc3339};
use mcpgate_store::AuditStore;
use std::sync::Arc;

/// The longest JSON page.
const MAX_PAGE: usize = 1000;
/// The most records one export holds.
const MAX_EXPORT: usize = 1_000_000;
/// Records read from the store per step of an export.
const EXPORT_STEP: usize = 1000;

/// A time: RFC 3339, or a duration before now (`90s`, `15m`, `24h`, `7d`).
fn time(field: &str, v: &str, now_ms: i64) -> Result<i64, ApiError> {
    if let Some(t) = parse_rfc3339(v) {
        return Ok(t.saturating_mul(1000));
    }
    seconds(v)
        .map(|s| now_ms.saturating_sub(s.saturating_mul(1000)))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{field}: use an RFC 3339 time or a duration like 15m, 24h or 7d"
            ))
        })
}

/// `90s`, `15m`, `24h`, `7d` in seconds (at most 7 digits: the OpenAPI pattern's bound).
fn seconds(v: &str) -> Option<i64> {
    let unit = match v.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let digits = &v[..v.len() - 1];
    if digits.is_empty() || digits.len() > 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    n.checked_mul(unit)
}

fn filters(gw: &Gateway, q: &crate::oauth::form::Form) -> Result<AuditQuery, ApiError> {
    let now = gw.clock.unix_ms();
    for name in ["user", "tool", "key", "client"] {
        if q.get(name)
            .is_some_and(|v| v.len() > 256 || v.chars().any(char::is_control))
        {
            return Err(ApiError::bad_request(format!(
                "{name}: at most 256 bytes, no control characters"
            )));
        }
    }
    let text = |name: &str| q.get(name).map(str::to_string);
    if let Some(d) = q.get("outcome")
        && !matches!(d, "allow" | "deny" | "limited" | "error")
    {
        return Err(ApiError::bad_request("outcome must be allow, deny, limited or error"));
    }
    if let Some(e) = q.get("event")
        && !matches!(e, "auth" | "call" | "admin")
    {
        return Err(ApiError::bad_request("event must be auth, call or admin"));
    }
    Ok(AuditQuery {
        since_ms: q.get("since").map(|v| time("since", v, now)).transpose()?,
        until_ms: q.get("until").map(|v| time("until", v, now)).transpose()?,
        user: text("user"),
        tool: text("tool"),
        decision: text("outcome"),
        key_id: text("key"),
        client_id: text("client"),
        event: text("event"),
        before: q
            .get("cursor")
            .map(|c| {
                c.parse::<u64>()
                    .map_err(|_| ApiError::bad_request("cursor must be the next_cursor of a page"))
            })
            .transpose()?,
        limit: 0,
    })
}

const FILTERS: [&str; 11] = [
    "since", "until", "user", "tool", "outcome", "key", "client", "event", "cursor", "limit", "format",
];

/// `GET /audit?since=&until=&user=&tool=&outcome=&key=&client=&event=&cursor=&limit=&format=`.
/// JSON (default): a page, newest first, and `next_cursor` for the page before it. `jsonl`, `csv`:
/// every matching record (up to `limit`, default 100,000), streamed newest first.
pub async fn search(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    act(&gw, &parts, false, Action::new("audit.search", None), async |a, _| {
        let q = query(&parts, &FILTERS)?;
        let mut filter = filters(&gw, &q)?;
        let format = q.get("format").unwrap_or("json");
        let (max, default) = match format {
            "json" => (MAX_PAGE, 100),
            "jsonl" | "csv" => (MAX_EXPORT, 100_000),
            _ => return Err(ApiError::bad_request("format must be json, jsonl or csv")),
        };
        filter.limit = match q.get("limit") {
            None => default,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| ApiError::bad_request(format!("limit must be a number from 1 to {max}")))?,
        };
        if format == "json" {
            let page = a.audit.search(&filter).await?;
            let next = (page.len() == filter.limit)
                .then(|| page.last().map(|(n, _)| n.to_string()))
                .flatten();
            let items: Vec<serde_json::Value> = page.iter().map(|(n, r)| numbered(*n, r)).collect();
            return Ok(json(
                StatusCode::OK,
                serde_json::json!({"items": items, "next_cursor": next}),
            ));
        }
        Ok(export(a.audit.clone(), filter, format == "csv"))
    })
    .await
}

fn numbered(n: u64, r: &AuditRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["number"] = n.into();
    v["time"] = format_rfc3339(r.time_ms / 1000).into();
    v
}

const CSV_COLUMNS: [&str; 17] = [
    "number",
    "time",
    "request_id",
    "event",
    "principal",
    "key_id",
    "user_id",
    "tenant",
    "auth_method",
    "client_addr",
    "mcp_method",
    "tool",
    "decision",
    "reason",
    "status",
    "latency_us",
    "client_id",
];

/// One CSV field: quoted, quotes doubled; a value a spreadsheet would run as a formula (`=`, `+`,
/// `-`, `@`, tab, CR) gets a leading `'` — tool names and reasons come from clients.
fn csv_field(v: &str) -> String {
    let guarded = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

fn csv_row(n: u64, r: &AuditRecord) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = [
        n.to_string(),
        format_rfc3339(r.time_ms / 1000),
        r.request_id.clone(),
        r.event.clone(),
        o(&r.principal),
        o(&r.key_id),
        o(&r.user_id),
        o(&r.tenant),
        o(&r.auth_method),
        o(&r.client_addr),
        o(&r.mcp_method),
        o(&r.tool),
        r.decision.clone(),
        r.reason.clone(),
        r.status.to_string(),
        r.latency_us.to_string(),
        o(&r.client_id),
    ];
    let mut line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// The matching records as a stream, read from the store a step at a time (never all in memory).
fn export(store: Arc<dyn AuditStore>, filter: AuditQuery, csv: bool) -> Response {
    struct State {
        store: Arc<dyn AuditStore>,
        filter: AuditQuery,
        left: usize,
        header: bool,
        done: bool,
    }
    let start = State {
        store,
        left: filter.limit,
        filter,
        header: csv,
        done: false,
    };
    let stream = futures_util::stream::unfold(start, move |mut s| async move {
        if s.header {
            s.header = false;
            let mut h = CSV_COLUMNS.join(",");
            h.push_str("\r\n");
            return Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(h)), s));
        }
        if s.done || s.left == 0 {
            return None;
        }
        let step = s.left.min(EXPORT_STEP);
        let q = AuditQuery {
            limit: step,
            ..s.filter.clone()
        };
        let page = match s.store.search(&q).await {
            Ok(p) => p,
            Err(e) => {
                // The status is sent; the body ends short, and the log says why.
                tracing::warn!(error = %e, "admin: an audit export stopped: the store failed");
                return Some((
                    Err(std::io::Error::other("the store failed")),
                    State { done: true, ..s },
                ));
            }
        };
        s.left -= page.len();
        s.done = page.len() < step;
        s.filter.before = page.last().map(|(n, _)| *n);
        let mut out = String::new();
        for (n, r) in &page {
            if csv {
                out.push_str(&csv_row(*n, r));
            } else {
                out.push_str(&numbered(*n, r).to_string());
                out.push('\n');
            }
        }
        Some((Ok(axum::body::Bytes::from(out)), s))
    });
    let mut r = Response::new(Body::from_stream(stream));
    let (kind, name) = if csv {
        ("text/csv; charset=utf-8", "attachment; filename=\"mcpgate-audit.csv\"")
    } else {
        (
            "application/jsonl; charset=utf-8",
            "attachment; filename=\"mcpgate-audit.jsonl\"",
        )
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(name));
    super::no_store(&mut r);
    r
}

/// `GET /usage?since=24h&until=&bucket=1h&by=tool&top=10`.
pub async fn usage(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    act(&gw, &parts, false, Action::new("usage", None), async |a, _| {
        let q = query(&parts, &["since", "until", "bucket", "by", "top"])?;
        let now = gw.clock.unix_ms();
        let since = time("since", q.get("since").unwrap_or("24h"), now)?;
        let until = q.get("until").map_or(Ok(now), |v| time("until", v, now))?;
        // Saturating: the window's ends come from the caller.
        let span = until.saturating_sub(since);
        if until <= since {
            return Err(ApiError::bad_request("until must be after since"));
        }
        let bucket_ms = match q.get("bucket") {
            Some(b) => seconds(b)
                .filter(|s| *s >= 1)
                .ok_or_else(|| ApiError::bad_request("bucket: use a duration like 1m, 1h or 1d"))?
                .saturating_mul(1000),
            // About 48 buckets, at least a minute each.
            None => (span / 48).max(60_000),
        };
        if span.saturating_add(bucket_ms - 1) / bucket_ms > MAX_BUCKETS {
            return Err(ApiError::bad_request(format!(
                "that window holds more than {MAX_BUCKETS} buckets; widen the bucket"
            )));
        }
        let by = match q.get("by") {
            None => Dimension::Tool,
            Some(d) => Dimension::parse(d)
                .ok_or_else(|| ApiError::bad_request("by must be key, user, tool, client or reason"))?,
        };
        let top = match q.get("top") {
            None => 10,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| ApiError::bad_request("top must be a number from 1 to 100"))?,
        };
        let uq = UsageQuery {
            since_ms: since,
            until_ms: until,
            bucket_ms,
            by,
            top,
        };
        let u = a.audit.usage(&uq).await?;
        Ok(json(
            StatusCode::OK,
            serde_json::json!({
                "since": format_rfc3339(since / 1000),
                "until": format_rfc3339(until / 1000),
                "since_ms": since,
                "until_ms": until,
                "bucket_ms": bucket_ms,
                "by": by,
                "buckets": u.buckets,
                "top": u.top,
                "total": u.total,
            }),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1+2"), "\"'-1+2\"");
        assert_eq!(csv_field("a,b\r\nc"), "\"a,b\r\nc\"");
    }

    #[test]
    fn durations() {
        assert_eq!(seconds("90s"), Some(90));
        assert_eq!(seconds("15m"), Some(900));
        assert_eq!(seconds("7d"), Some(604_800));
        assert_eq!(seconds("-1h"), None);
        assert_eq!(seconds("1y"), None);
        assert_eq!(seconds("+5m"), None);
        assert_eq!(seconds("9999999d"), Some(9_999_999 * 86_400));
        assert_eq!(seconds("99999999999d"), None);
        assert_eq!(seconds(""), None);
        assert_eq!(seconds("h"), None);
    }
}
