//! Which tool set the server exposes.
//!
//! The demo set is what a person trying mcpgate sees; it stays small so a `tools/list` through the
//! gateway is readable. The conformance suite needs two dozen more fixed names, which would only
//! be noise in a demo, so they are opt-in. The differential suite's surface is separate again: a
//! few tools, resources and prompts whose names say who may use them (see `differential.rs`).

use std::fmt;
use std::str::FromStr;

use crate::record::Recorder;

/// What a server exposes and whether it logs its executions. A [`Profile`] converts into one
/// that records nothing, so `serve_http(listener, Profile::Demo)` reads as before.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub profile: Profile,
    /// Executions are appended here (`--record`); only the differential profile records.
    pub recorder: Option<Recorder>,
}

impl From<Profile> for Setup {
    fn from(profile: Profile) -> Self {
        Setup {
            profile,
            recorder: None,
        }
    }
}

/// The set of tools, resources and prompts the server exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// The demo tools (`echo`, `add`, `slow`, `ask_name`, `summarize`, `crash`, `inspect`), the
    /// `demo://readme` resource and the `greeting` prompt.
    #[default]
    Demo,
    /// Everything in [`Profile::Demo`] plus what the official conformance suite's server
    /// scenarios call (`test_*` tools, `test://` resources, `test_*` prompts, completions).
    Conformance,
    /// Only the differential suite's surface (`echo`, `admin_tool`, `denied_tool`, `test://public`,
    /// `test://admin`, `greet`, `admin_prompt`), each execution recorded with `--record`.
    Differential,
}

impl Profile {
    /// Whether the conformance suite's fixtures are exposed.
    pub fn includes_conformance(self) -> bool {
        matches!(self, Profile::Conformance)
    }

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Demo => "demo",
            Profile::Conformance => "conformance",
            Profile::Differential => "differential",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile name that is none of `demo`, `conformance` and `differential`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProfile(pub String);

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown profile `{}`: expected `demo`, `conformance` or `differential`",
            self.0
        )
    }
}

impl std::error::Error for UnknownProfile {}

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "demo" => Ok(Profile::Demo),
            "conformance" => Ok(Profile::Conformance),
            "differential" => Ok(Profile::Differential),
            other => Err(UnknownProfile(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_names_and_rejects_others() {
        assert_eq!("demo".parse::<Profile>(), Ok(Profile::Demo));
        assert_eq!("conformance".parse::<Profile>(), Ok(Profile::Conformance));
        assert_eq!("differential".parse::<Profile>(), Ok(Profile::Differential));
        assert!("Demo".parse::<Profile>().is_err());
    }
}
