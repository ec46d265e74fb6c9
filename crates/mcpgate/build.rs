//! Puts the git commit the binary was built from into `MCPGATE_GIT_COMMIT`, which
//! `mcpgate --version` prints beside the package version: 12 hex digits, `-dirty` when tracked
//! files differed from that commit, or `unknown` outside a git checkout (a source tarball, the
//! Docker build, whose context leaves `.git` out). `MCPGATE_COMMIT` set to a non-empty value wins
//! over git (packagers building from a tarball, `docker build --build-arg MCPGATE_COMMIT=…`).
//! Nothing here fails the build: a missing git or repository means `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

const OVERRIDE: &str = "MCPGATE_COMMIT";

fn main() {
    println!("cargo:rerun-if-env-changed={OVERRIDE}");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match std::env::var(OVERRIDE).ok().map(|v| v.trim().to_string()) {
        Some(v) if !v.is_empty() => {
            if !v.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)) {
                println!("cargo:warning={OVERRIDE}={v:?} has characters other than letters, digits and ._+-: ignored");
                from_git(&manifest_dir)
            } else {
                v
            }
        }
        _ => from_git(&manifest_dir),
    };
    println!("cargo:rustc-env=MCPGATE_GIT_COMMIT={commit}");
}

/// The commit of the checkout this crate is in, or `unknown`.
fn from_git(dir: &Path) -> String {
    // Only a checkout that tracks this crate counts: sources unpacked inside some other
    // repository (a vendored tarball) must not report that repository's commit.
    if git(dir, &["ls-files", "--error-unmatch", "Cargo.toml"]).is_none() {
        return "unknown".into();
    }
    watch_git_files(dir);
    let Some(hash) = git(dir, &["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".into();
    };
    // --no-optional-locks: `git status` would otherwise refresh and rewrite the index, which
    // this script watches, and every build would then run it again. Untracked files do not make
    // a build dirty (they are not compiled unless added).
    let dirty = git(
        dir,
        &["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
    )
    .is_some_and(|s| !s.is_empty());
    if dirty { format!("{hash}-dirty") } else { hash }
}

/// Runs again when HEAD moves (a commit, a checkout) or the index changes (`git add`, a commit).
/// Edits to tracked files that are not yet staged do not rerun it: `-dirty` reflects the last
/// time it ran. Only files that exist are named: cargo reruns every build for a missing one.
fn watch_git_files(dir: &Path) {
    let mut files = Vec::new();
    for name in ["HEAD", "index", "packed-refs"] {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", name]) {
            files.push(dir.join(p));
        }
    }
    // The branch HEAD points at, as a loose ref; when it is only in packed-refs, its folder
    // (a commit writes the loose ref there).
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(dir, &["rev-parse", "--git-path", &branch])
    {
        let p = dir.join(p);
        match p.parent() {
            Some(parent) if !p.exists() => files.push(parent.to_path_buf()),
            _ => files.push(p),
        }
    }
    for f in files.iter().filter(|f| f.exists()) {
        println!("cargo:rerun-if-changed={}", f.display());
    }
}

/// `git -C dir ARGS`, trimmed stdout, or `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
