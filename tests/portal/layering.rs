//! Issue 13, point 7: every `crate::` arrow in `src/` points down the layering of DESIGN.md
//! section 1, and no dialect branch (`PgPool`, `SqlitePool`, `Backend::`) stands outside
//! `src/store/`. Reads the sources as text (comments left out), so a new import that breaks
//! either rule fails here with its file and line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What each part may use besides itself; the top-level files (`main.rs`, `lib.rs`, `cli.rs`,
/// `startup.rs`, `config.rs`, `telemetry.rs`, `demo.rs`) may use anything.
fn allowed(part: &str) -> Option<&'static [&'static str]> {
    Some(match part {
        "web" => &["auth", "oauth", "jobs", "mail", "webhooks", "store", "domain"],
        "auth" | "oauth" => &["mail", "webhooks", "store", "domain"],
        "jobs" => &["mail", "webhooks", "store", "domain"],
        "mail" | "webhooks" | "store" => &["domain"],
        "domain" => &[],
        _ => return None,
    })
}

fn sources(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The code of a line without its `//` comment (a `//` inside a string literal cuts the rest
/// too, which only hides code, never invents an arrow).
fn code(line: &str) -> &str {
    line.find("//").map_or(line, |at| &line[..at])
}

/// The parts a line of code names through `crate::` (including `$crate::` in macros and the
/// groups of `use crate::{a, b::c}`).
fn named_parts(line: &str) -> BTreeSet<String> {
    let mut parts = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    for (at, _) in line.match_indices("crate::") {
        let rest = &line[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_alphanumeric() || c == '_') => {
                        parts.insert(ident(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            parts.insert(ident(rest));
        }
    }
    parts.retain(|p| !p.is_empty());
    parts
}

#[test]
fn every_crate_arrow_points_down_and_dialects_stay_in_the_store() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    assert!(files.len() > 40, "the sources were not found under {}", src.display());
    let mut broken = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let mut components = relative.components();
        let first = components.next().unwrap().as_os_str().to_string_lossy().into_owned();
        let part = if components.next().is_some() { first } else { first.trim_end_matches(".rs").to_owned() };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let line = code(line);
            let place = format!("src/{}:{}", relative.display(), n + 1);
            if part != "store" {
                for dialect in ["PgPool", "SqlitePool", "Backend::"] {
                    if line.contains(dialect) {
                        broken.push(format!("{place}: `{dialect}` outside src/store/"));
                    }
                }
            }
            // Issue 13, point 6 (clippy.toml enforces it too): one reader of the wall clock.
            if relative != Path::new("domain/clock.rs") {
                for wall_clock in ["Utc::now(", "SystemTime::now(", "Local::now("] {
                    if line.contains(wall_clock) {
                        broken.push(format!("{place}: `{wall_clock}` outside domain::clock::SystemClock"));
                    }
                }
            }
            let Some(may_use) = allowed(&part) else { continue };
            for used in named_parts(line) {
                if used != part && !may_use.contains(&used.as_str()) {
                    broken.push(format!("{place}: {part} -> {used}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "arrows against the layering:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_grouped_and_macro_paths() {
    assert_eq!(named_parts("use crate::{auth::X, store::{A, B}};"), BTreeSet::from(["auth".into(), "store".into()]));
    assert_eq!(named_parts("use crate::{oauth::O, auth::A};"), BTreeSet::from(["auth".into(), "oauth".into()]));
    assert_eq!(named_parts("let e: &$crate::domain::NewEmail = x;"), BTreeSet::from(["domain".into()]));
    assert_eq!(named_parts(code("let x = 1; // crate::web::Y")), BTreeSet::new());
    assert_eq!(allowed("mail"), Some(&["domain"][..]));
}
