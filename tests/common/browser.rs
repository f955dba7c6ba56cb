//! The browser check from tests: opens an HTML file in Debian's headless Chromium through
//! `tests/browser/check_page.py` (Playwright from the venv of `deploy/local/browser-env.sh`),
//! which fails on console errors, uncaught exceptions, network requests and wrong element counts.
//! A missing chromium or venv fails the test with the script's message; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's python (created on first use; `deploy/local/browser-env.sh`).
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("deploy/local/browser-env.sh"))
            .output()
            .expect("run deploy/local/browser-env.sh");
        assert!(
            out.status.success(),
            "deploy/local/browser-env.sh failed (run deploy/local/install.sh for chromium): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// The outcome of one check: whether it passed, its JSON summary and its complaints.
#[derive(Debug)]
pub struct PageCheck {
    pub passed: bool,
    pub summary: serde_json::Value,
    pub stderr: String,
}

impl PageCheck {
    /// The problems the page had, as reported by the checker.
    pub fn problems(&self) -> Vec<String> {
        self.summary["problems"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn count(&self, selector: &str) -> Option<u64> {
        self.summary["counts"][selector].as_u64()
    }
}

/// Open `file` and check it: `expect` pairs of (CSS selector, exact count), `rendered` selectors
/// whose every match must be laid out and draw shapes.
pub fn check_page(file: &Path, expect: &[(&str, usize)], rendered: &[&str]) -> PageCheck {
    check_page_drawn(file, expect, &[], rendered)
}

/// As [`check_page`], with `drawn` pairs of (CSS selector, count): exactly that many elements
/// match and every one of them has a non-empty box on the page.
pub fn check_page_drawn(
    file: &Path,
    expect: &[(&str, usize)],
    drawn: &[(&str, usize)],
    rendered: &[&str],
) -> PageCheck {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/browser/check_page.py"))
        .arg(file);
    for (selector, n) in expect {
        cmd.arg("--expect").arg(format!("{selector}={n}"));
    }
    for (selector, n) in drawn {
        cmd.arg("--drawn").arg(format!("{selector}={n}"));
    }
    for selector in rendered {
        cmd.arg("--rendered").arg(selector);
    }
    let out = cmd.output().expect("run tests/browser/check_page.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "check_page.py gave no JSON summary ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    PageCheck {
        passed: out.status.success(),
        summary,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
