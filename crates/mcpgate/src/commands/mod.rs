//! One module per subcommand.

pub mod audit;
pub mod completions;
pub mod config;
pub mod connect;
pub mod demo;
pub mod keys;
pub mod oauth;
pub mod serve;
pub mod store;
pub mod token;

/// Parses `90s`, `15m`, `24h`, `7d` into seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("{s:?} is not a duration like 90s, 15m, 24h or 7d"))?;
    let mult = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => anyhow::bail!("{s:?} is not a duration like 90s, 15m, 24h or 7d"),
    };
    n.checked_mul(mult).ok_or_else(|| anyhow::anyhow!("{s:?} is too long"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("90s").unwrap(), 90);
        assert_eq!(super::parse_duration("24h").unwrap(), 86400);
        assert_eq!(super::parse_duration("7d").unwrap(), 604800);
        assert!(super::parse_duration("7w").is_err());
        assert!(super::parse_duration("").is_err());
    }
}
