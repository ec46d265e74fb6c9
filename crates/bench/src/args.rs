//! A tiny `--flag value` / `--flag=value` parser (no clap: the rig stays small).

// Shared by both binaries of this package (mcpgate-bench, mcpgate-scale), each using part of it.
#![allow(dead_code)]

use anyhow::{Context, Result, bail};
use std::str::FromStr;

pub struct Flags {
    items: Vec<(String, Option<String>)>,
}

impl Flags {
    /// `booleans` are the flags that take no value; every other flag takes one.
    pub fn parse(argv: &[String], booleans: &[&str]) -> Result<Self> {
        let mut items = Vec::new();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                bail!("unexpected argument {a:?}");
            };
            if let Some((k, v)) = name.split_once('=') {
                items.push((k.to_owned(), Some(v.to_owned())));
            } else if booleans.contains(&name) {
                items.push((name.to_owned(), None));
            } else {
                let v = it.next().with_context(|| format!("--{name} needs a value"))?;
                items.push((name.to_owned(), Some(v.clone())));
            }
        }
        Ok(Self { items })
    }

    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.items.len();
        self.items.retain(|(k, _)| k != name);
        self.items.len() != before
    }

    pub fn all(&mut self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.items.retain(|(k, v)| {
            if k == name {
                out.extend(v.clone());
                false
            } else {
                true
            }
        });
        out
    }

    pub fn one(&mut self, name: &str) -> Option<String> {
        self.all(name).pop()
    }

    pub fn required(&mut self, name: &str) -> Result<String> {
        self.one(name).with_context(|| format!("--{name} is required"))
    }

    pub fn parsed<T: FromStr>(&mut self, name: &str) -> Result<Option<T>> {
        match self.one(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("bad value for --{name}: {v:?}")),
        }
    }

    pub fn or<T: FromStr>(&mut self, name: &str, default: T) -> Result<T> {
        Ok(self.parsed(name)?.unwrap_or(default))
    }

    pub fn finish(self) -> Result<()> {
        if let Some((k, _)) = self.items.first() {
            bail!("unknown or misplaced flag --{k}");
        }
        Ok(())
    }
}

/// `--header 'K: V'` values as header pairs.
pub fn header_pairs(headers: &[String]) -> Result<Vec<(http::HeaderName, http::HeaderValue)>> {
    headers
        .iter()
        .map(|h| {
            let (k, v) = h
                .split_once(':')
                .with_context(|| format!("--header wants 'K: V', got {h:?}"))?;
            Ok((
                http::HeaderName::from_bytes(k.trim().as_bytes())?,
                http::HeaderValue::from_str(v.trim())?,
            ))
        })
        .collect()
}

/// A tokio runtime: current-thread for 1 thread, else multi-threaded with `threads` workers.
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    Ok(rt)
}
