//! Rate limits and quotas: what any [`LimitStore`] must decide, on times given by the caller.

use super::{Failure, Outcome};
use crate::LimitStore;
use mcpgate_core::principal::Limits;
use mcpgate_core::ratelimit::Now;
use std::sync::Arc;

/// 2023-11-14 00:00:00 UTC: a day edge, so quota tests know where midnight is.
const DAY_START: i64 = 1_699_920_000;

fn at(s: i64) -> Now {
    Now {
        mono_us: (s + 1) * 1_000_000,
        unix_s: DAY_START + s,
    }
}

fn per_minute(n: u32) -> Limits {
    Limits {
        per_minute: Some(n),
        ..Limits::default()
    }
}

/// Limits: a burst of the per-minute limit then one per `60 / limit` s; a refusal counts nothing
/// and names its window; principals are counted apart; a tool's limit is counted with, not
/// instead of, the principal's own; the daily quota resets at UTC midnight; no limits means no
/// counting; and of 64 racing requests exactly the limit are admitted.
pub async fn limits<S: LimitStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    let three = per_minute(3);
    for i in 0..3 {
        ensure!(
            s.check("a", &three, None, at(0)).await?.is_ok(),
            "request {} of a burst of 3 was refused",
            i + 1
        );
    }
    match s.check("a", &three, None, at(0)).await? {
        Ok(()) => {
            return Err(Failure(
                "a 4th request within a limit of 3 a minute was admitted".into(),
            ));
        }
        Err(l) => ensure!(
            l.window == "per-minute" && l.limit == 3 && l.tool.is_none() && (1..=60).contains(&l.retry_after_s),
            "the refusal names the wrong window or wait: {l:?}"
        ),
    }
    ensure!(
        s.remaining("a", &three, at(0)).await?.per_minute == Some(0),
        "a refused request was not left at 0 remaining"
    );
    ensure!(
        s.check("b", &three, None, at(0)).await?.is_ok(),
        "one principal's use refused another"
    );
    ensure!(
        s.check("a", &three, None, at(19)).await?.is_err(),
        "a request was admitted before the rate allowed one more"
    );
    ensure!(
        s.check("a", &three, None, at(20)).await?.is_ok(),
        "no request was admitted once the rate allowed one more"
    );
    ensure!(
        s.remaining("b", &three, at(10)).await?.per_minute == Some(2),
        "remaining does not follow use"
    );
    ensure!(
        s.remaining("b", &three, at(20)).await?.per_minute == Some(3),
        "remaining does not follow refill"
    );
    ensure!(
        s.check("free", &Limits::default(), None, at(0)).await?.is_ok()
            && s.remaining("free", &Limits::default(), at(0))
                .await?
                .per_minute
                .is_none(),
        "a caller without limits was counted"
    );

    // A tool's own limit: counted with the principal's, a refusal by it costs the principal nothing.
    let one = per_minute(1);
    let roomy = per_minute(10);
    ensure!(
        s.check("t", &roomy, Some(("search", &one)), at(0)).await?.is_ok(),
        "a first tool call was refused"
    );
    match s.check("t", &roomy, Some(("search", &one)), at(0)).await? {
        Ok(()) => return Err(Failure("a tool called beyond its own limit was admitted".into())),
        Err(l) => ensure!(
            l.tool.as_deref() == Some("search"),
            "a tool's refusal does not name the tool: {l:?}"
        ),
    }
    ensure!(
        s.remaining("t", &roomy, at(0)).await?.per_minute == Some(9),
        "a request refused by a tool's limit was counted against the principal"
    );
    ensure!(
        s.check("t", &roomy, Some(("other", &one)), at(0)).await?.is_ok(),
        "one tool's limit refused another tool"
    );

    // The daily quota resets at UTC midnight, not 24 h after first use.
    let quota = Limits {
        per_day: Some(2),
        ..Limits::default()
    };
    let evening = 86_400 - 100;
    ensure!(
        s.check("q", &quota, None, at(evening)).await?.is_ok(),
        "quota use 1 refused"
    );
    ensure!(
        s.check("q", &quota, None, at(evening + 1)).await?.is_ok(),
        "quota use 2 refused"
    );
    match s.check("q", &quota, None, at(evening + 2)).await? {
        Ok(()) => return Err(Failure("a request beyond the daily quota was admitted".into())),
        Err(l) => ensure!(
            l.window == "daily quota" && l.retry_after_s == 98,
            "the quota's refusal does not wait until midnight: {l:?}"
        ),
    }
    ensure!(
        s.check("q", &quota, None, at(86_400)).await?.is_ok(),
        "the daily quota did not reset at midnight"
    );

    // 64 racing requests against a limit of 10: exactly 10 admitted.
    let ten = per_minute(10);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { store.check("raced", &ten, None, at(0)).await },
        ));
    }
    let mut admitted = 0;
    for t in tasks {
        if t.await
            .map_err(|e| Failure(format!("a check task failed: {e}")))??
            .is_ok()
        {
            admitted += 1;
        }
    }
    ensure!(
        admitted == 10,
        "{admitted} of 64 racing requests were admitted against a limit of 10"
    );
    Ok(())
}
