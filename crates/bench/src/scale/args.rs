//! `--flag value` / `--flag=value` arguments for `mcpgate-scale` subcommands.

use anyhow::{Context, Result, bail};
use std::str::FromStr;

pub struct Args {
    items: Vec<(String, String)>,
}

impl Args {
    pub fn parse(argv: &[String]) -> Result<Self> {
        let mut items = Vec::new();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                bail!("unexpected argument {a:?}");
            };
            match name.split_once('=') {
                Some((k, v)) => items.push((k.to_owned(), v.to_owned())),
                None => {
                    let v = it.next().with_context(|| format!("--{name} needs a value"))?;
                    items.push((name.to_owned(), v.clone()));
                }
            }
        }
        Ok(Self { items })
    }

    /// Every value given for `--name`, in order (removed from what is left to check).
    pub fn all(&mut self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.items.retain(|(k, v)| {
            if k == name {
                out.push(v.clone());
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

    /// Fails on any flag no one asked for (a typo must not be ignored).
    pub fn finish(self) -> Result<()> {
        if let Some((k, _)) = self.items.first() {
            bail!("unknown or misplaced flag --{k}");
        }
        Ok(())
    }
}
