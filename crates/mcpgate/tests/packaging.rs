//! What ships around the binary: `--version` naming the commit, the shell completions, the
//! systemd unit (deploy/systemd) and the container image (deploy/Dockerfile). The unit and the
//! image are checked only where their tools run (`systemd-analyze`; a Docker daemon): elsewhere
//! those tests print why they skipped and pass.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mcpgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(args)
        .output()
        .expect("run mcpgate")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `git -C crates/mcpgate ARGS`, trimmed, when git runs and succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// True when `cmd args` can be started and exits 0.
fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).output().is_ok_and(|o| o.status.success())
}

/// What build.rs is expected to have put after "commit ": `MCPGATE_COMMIT` when it was set for
/// this build, else the checkout's HEAD (`-dirty` allowed), else `unknown`.
enum Expected {
    Exactly(String),
    Head(String),
    Unknown,
}

fn expected_commit() -> Expected {
    // build.rs ignores a value with other characters (and warns).
    let usable = |v: &&str| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if let Some(v) = option_env!("MCPGATE_COMMIT").map(str::trim).filter(usable) {
        return Expected::Exactly(v.to_string());
    }
    if git(&["ls-files", "--error-unmatch", "Cargo.toml"]).is_some()
        && let Some(head) = git(&["rev-parse", "--short=12", "HEAD"])
    {
        return Expected::Head(head);
    }
    Expected::Unknown
}

#[test]
fn version_names_the_package_version_and_the_commit() {
    for flag in ["--version", "-V"] {
        let out = mcpgate(&[flag]);
        assert!(out.status.success(), "mcpgate {flag}: {out:?}");
        let line = stdout(&out);
        let line = line.trim();
        let prefix = format!("mcpgate {} (commit ", env!("CARGO_PKG_VERSION"));
        let commit = line
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("mcpgate {flag} printed {line:?}, expected \"{prefix}…)\""));
        let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
        let looks_like_a_commit = hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        match expected_commit() {
            Expected::Exactly(v) => assert_eq!(commit, v, "MCPGATE_COMMIT was set for this build"),
            Expected::Head(head) => {
                assert!(looks_like_a_commit, "{commit:?} is not 12 hex digits (+ -dirty)");
                assert_eq!(
                    hash, head,
                    "built from {commit}, but HEAD is {head} (a commit landed after the build? run again)"
                );
            }
            Expected::Unknown => assert_eq!(commit, "unknown", "built outside a git checkout"),
        }
    }
}

const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "elvish", "powershell"];

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in SHELLS {
        let out = mcpgate(&["completions", shell]);
        assert!(out.status.success(), "completions {shell}: {out:?}");
        let script = stdout(&out);
        assert!(script.len() > 500, "completions {shell}: only {} bytes", script.len());
        for word in ["serve", "keys", "connect", "completions", "upstream-url", "rotate"] {
            assert!(script.contains(word), "completions {shell} never mentions {word}");
        }
        // Hidden subcommands stay hidden.
        assert!(
            !script.contains("demo-upstream"),
            "completions {shell} offers demo-upstream"
        );
    }
}

/// Each script parses in its shell, where that shell is installed (`-n`: read, do not run).
#[test]
fn completion_scripts_are_valid_syntax() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (shell, check) in [("bash", "-n"), ("zsh", "-n"), ("fish", "--no-execute")] {
        if !runs(shell, &["-c", "true"]) {
            println!("note: {shell} is not installed; its completion script's syntax is not checked");
            continue;
        }
        let path = dir.path().join(format!("mcpgate.{shell}"));
        std::fs::write(&path, mcpgate(&["completions", shell]).stdout).expect("write script");
        let out = Command::new(shell).arg(check).arg(&path).output().expect("run shell");
        assert!(
            out.status.success(),
            "{shell} {check} on the completion script: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Bash really completes with it: `mcpgate ke<TAB>` gives `keys`, `mcpgate keys <TAB>` its
/// subcommands, `mcpgate completions <TAB>` the shells.
#[test]
fn bash_completes_subcommands() {
    if !runs("bash", &["-c", "true"]) {
        println!("note: bash is not installed; completion is not exercised");
        return;
    }
    let complete = |words: &[&str]| -> Vec<String> {
        let script = String::from_utf8(mcpgate(&["completions", "bash"]).stdout).expect("utf-8");
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let cword = words.len() - 1;
        let program = format!(
            "{script}\nCOMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; \
             COMP_POINT=${{#COMP_LINE}}; _mcpgate mcpgate '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words = quoted.join(" "),
            cur = words[cword],
            prev = words[cword - 1],
        );
        let out = Command::new("bash").arg("-c").arg(program).output().expect("run bash");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        stdout(&out)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(complete(&["mcpgate", "ke"]), ["keys"]);
    // `demo-upstream` is hidden from --help and from completion.
    assert_eq!(complete(&["mcpgate", "de"]), Vec::<String>::new());
    let keys = complete(&["mcpgate", "keys", ""]);
    for sub in ["create", "list", "rotate", "revoke"] {
        assert!(keys.iter().any(|k| k == sub), "mcpgate keys <TAB> gave {keys:?}");
    }
    let shells = complete(&["mcpgate", "completions", ""]);
    for shell in SHELLS {
        assert!(
            shells.iter().any(|s| s == shell),
            "mcpgate completions <TAB> gave {shells:?}"
        );
    }
}

#[test]
fn completions_refuse_an_unknown_shell() {
    let out = mcpgate(&["completions", "nushell"]);
    assert_eq!(out.status.code(), Some(2), "completions nushell: {out:?}");
    assert!(out.stdout.is_empty(), "completions nushell printed a script");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'nushell'") && err.contains("bash") && err.contains("zsh"),
        "the refusal does not list the shells: {err:?}"
    );
    let out = mcpgate(&["completions"]);
    assert_eq!(out.status.code(), Some(2), "completions without a shell: {out:?}");
    assert!(out.stdout.is_empty(), "completions without a shell printed a script");
    assert!(String::from_utf8_lossy(&out.stderr).contains("<SHELL>"));
}

/// `systemd-analyze verify` on the unit, its ExecStart pointed at the binary under test (verify
/// refuses a command that does not exist). verify exits 0 even for unknown settings and only
/// prints them, so its output must be empty; a copy with a made-up setting shows this check
/// would notice one.
#[test]
fn systemd_unit_verifies() {
    if !runs("systemd-analyze", &["--version"]) {
        println!("note: systemd-analyze is not installed; deploy/systemd/mcpgate.service is not verified");
        return;
    }
    let unit = std::fs::read_to_string(repo_root().join("deploy/systemd/mcpgate.service")).expect("read the unit");
    let exec = "ExecStart=/usr/local/bin/mcpgate serve --config /etc/mcpgate/mcpgate.toml";
    assert!(unit.lines().any(|l| l == exec), "the unit's ExecStart is not {exec:?}");
    let unit = unit.replace(
        "ExecStart=/usr/local/bin/mcpgate ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_mcpgate")),
    );
    let verify = |text: &str| -> (bool, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mcpgate.service");
        std::fs::write(&path, text).expect("write unit");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("run systemd-analyze");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Lines about other units on this machine (verify loads their dependencies) are not ours.
        let ours: Vec<&str> = text.lines().filter(|l| l.contains("mcpgate")).collect();
        (out.status.success(), ours.join("\n"))
    };
    let (ok, said) = verify(&unit);
    assert!(ok && said.is_empty(), "systemd-analyze verify:\n{said}");

    let broken = unit.replace("[Service]\n", "[Service]\nProtectEverything=yes\n");
    let (_, said) = verify(&broken);
    assert!(
        said.contains("ProtectEverything"),
        "verify did not report an unknown setting: {said:?}"
    );

    // The hardening the unit promises is all there (a line dropped in an edit fails here).
    for line in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "StateDirectory=mcpgate",
        "WorkingDirectory=/var/lib/mcpgate",
        "EnvironmentFile=-/etc/mcpgate/mcpgate.env",
        "LimitNOFILE=65536",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line:?}");
    }
}

/// The image builds from deploy/Dockerfile and its binary answers `--version` with the commit
/// passed as a build argument. Needs a Docker daemon (this test's machine may have only the
/// client).
#[test]
fn docker_image_builds() {
    if !runs("docker", &["info"]) {
        println!("note: no Docker daemon answers `docker info`; deploy/Dockerfile is not built");
        return;
    }
    let tag = "mcpgate-packaging-test:latest";
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "0123456789ab".into());
    let build = Command::new("docker")
        .current_dir(repo_root())
        .args(["build", "-f", "deploy/Dockerfile", "-t", tag, "--build-arg"])
        .arg(format!("MCPGATE_COMMIT={commit}"))
        .arg(".")
        .status()
        .expect("run docker build");
    assert!(build.success(), "docker build -f deploy/Dockerfile failed");
    let out = Command::new("docker")
        .args(["run", "--rm", tag, "--version"])
        .output()
        .expect("run docker run");
    assert_eq!(
        stdout(&out).trim(),
        format!("mcpgate {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}
