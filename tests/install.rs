//! What an installed `outreach` shows a newcomer and an admin, from the real binary: the guide
//! with no command, the version with its commit, the shell completions, the manual pages (as
//! `man` renders them), and the systemd units the packages carry (as `systemd-analyze` loads
//! them). The package itself is installed and removed by `scripts/package --check` (root).

use std::path::Path;
use std::process::Command as Process;

use crate::common::{outreach, repo, run};

/// A program's (exit code, stdout, stderr).
fn output(mut command: Process) -> (i32, String, String) {
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_command_prints_the_guide() {
    let (code, stdout, stderr) = run(outreach());
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, format!("{}\n", outreach::cli::GUIDE));
    assert!(stdout.contains("outreach new my-campaign"), "{stdout}");
    assert!(stdout.lines().all(|l| l.chars().count() <= 100), "{stdout}");
}

#[test]
fn version_names_the_commit() {
    let mut git = Process::new("git");
    git.args(["rev-parse", "--short=10", "HEAD"])
        .current_dir(repo());
    let (code, commit, _) = output(git);
    // Outside a git checkout (a source tarball, or a checkout git will not read as this user:
    // "dubious ownership"), build.rs finds no commit either, and says so.
    let commit = match code {
        0 => commit.trim().to_string(),
        _ => "unknown".to_string(),
    };
    let mut c = outreach();
    c.arg("--version");
    let (code, stdout, stderr) = run(c);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(
        stdout,
        format!(
            "outreach {} (commit {})\n",
            env!("CARGO_PKG_VERSION"),
            commit
        )
    );
}

#[test]
fn completions_parse_and_name_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, file, first) in [
        ("bash", "outreach.bash", "_outreach() {"),
        ("zsh", "_outreach", "#compdef outreach"),
        ("fish", "outreach.fish", ""),
    ] {
        let mut c = outreach();
        c.args(["completions", shell]);
        let (code, script, stderr) = run(c);
        assert_eq!((code, stderr.as_str()), (0, ""), "{shell}");
        assert!(script.starts_with(first), "{shell}: {script:.200}");
        for command in [
            "check",
            "preview",
            "send",
            "listen",
            "suppressions",
            "completions",
        ] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
        std::fs::write(dir.path().join(file), &script).unwrap();
    }
    let mut bash = Process::new("bash");
    bash.arg("-n").arg(dir.path().join("outreach.bash"));
    assert_eq!(output(bash), (0, String::new(), String::new()));
}

#[test]
fn man_pages_render_one_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = outreach();
    c.args(["man", "-q", "--dir"]).arg(dir.path());
    assert_eq!(run(c), (0, String::new(), String::new()));
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "outreach.1",
        "outreach-send.1",
        "outreach-completions.1",
        "outreach-suppressions.1",
        "outreach-suppressions-list.1",
    ] {
        assert!(pages.contains(&page.to_string()), "{page} not in {pages:?}");
    }
    assert!(
        !pages
            .iter()
            .any(|p| p.contains("-man.") || p.contains("-help.")),
        "{pages:?}"
    );
    for page in &pages {
        let mut man = Process::new("man");
        man.arg("-l")
            .arg(dir.path().join(page))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100");
        let (code, text, stderr) = output(man);
        assert_eq!((code, stderr.as_str()), (0, ""), "man -l {page}");
        assert!(text.contains("NAME"), "{page}: {text}");
    }
    let mut man = Process::new("man");
    man.arg("-l")
        .arg(dir.path().join("outreach-send.1"))
        .env("MANPAGER", "cat");
    let (_, text, _) = output(man);
    assert!(text.contains("Exit codes:"), "{text}");
    // Every page's footer names the version and commit, as --version does.
    assert!(text.contains(outreach::cli::VERSION), "{text}");
}

/// The shipped units with `/usr/bin/outreach` pointing at the binary under test, which is not
/// installed there, in a directory of their own.
fn units_for_this_binary(dir: &Path) {
    let binary = assert_cmd::cargo::cargo_bin("outreach");
    for entry in std::fs::read_dir(repo().join("packaging/systemd")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/bin/outreach", &binary.display().to_string());
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
}

#[test]
fn systemd_units_verify_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    units_for_this_binary(dir.path());
    for unit in [
        "outreach-send@psoas.service",
        "outreach-send@psoas.timer",
        "outreach-listen.service",
    ] {
        // --man=no: the pages their Documentation= names are not installed here; the .deb's
        // check (scripts/check-deb) verifies the units with them.
        let mut verify = Process::new("systemd-analyze");
        verify
            .args(["verify", "--man=no"])
            .arg(unit)
            .current_dir(dir.path());
        assert_eq!(output(verify), (0, String::new(), String::new()), "{unit}");
    }
    // The timer is the README's cron line: every 15 minutes from 8:00 to 20:45 on weekdays.
    let timer = std::fs::read_to_string(dir.path().join("outreach-send@.timer")).unwrap();
    assert!(timer.contains("\nOnCalendar=Mon..Fri *-*-* 08..20:00/15:00\n"));
    assert!(timer.contains("\nPersistent=true\n"));
    // Exit 4 (a run by hand holds the lock) is accepted; 1, 2 and 3 fail the unit.
    let send = std::fs::read_to_string(dir.path().join("outreach-send@.service")).unwrap();
    let success: Vec<&str> = send
        .lines()
        .filter(|l| l.starts_with("SuccessExitStatus="))
        .collect();
    assert_eq!(success, ["SuccessExitStatus=4"]);
}

#[test]
fn systemd_units_stay_hardened() {
    let dir = tempfile::tempdir().unwrap();
    units_for_this_binary(dir.path());
    for unit in ["outreach-listen.service", "outreach-send@.service"] {
        // Exposure 2.0 at most (the scale ends at 10); both rate 1.4 today.
        let mut security = Process::new("systemd-analyze");
        security
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(dir.path().join(unit));
        let (code, report, stderr) = output(security);
        assert_eq!((code, stderr.as_str()), (0, ""), "{unit}:\n{report}");
        // A template is rated as an instance of it (`outreach-send@i.service`).
        let instance = unit.replace("@.", "@i.");
        assert!(
            report.contains(&format!("Overall exposure level for {instance}: 1.4 OK")),
            "{unit}:\n{report}"
        );
    }
}

#[test]
fn a_missing_campaign_file_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = outreach();
    c.args(["check", "campaign.toml"]).current_dir(dir.path());
    let (code, stdout, stderr) = run(c);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr,
        "error: cannot read campaign file campaign.toml: No such file or directory (os error 2); \
         give the path of a campaign TOML file (`outreach new NAME` makes one: \
         NAME/campaign.toml)\n"
    );
}
