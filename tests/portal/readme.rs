//! The README stands on its own (issue 14, point 10): every setting the portal reads is in its
//! table, it sends a newcomer to no file outside the repository, and it says what `--demo` needs
//! and how to start over.

/// The README, as committed.
fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

#[test]
fn the_readme_lists_every_setting_the_portal_reads() {
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config.rs")).unwrap();
    let settings: Vec<&str> = config.split("env = \"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    assert!(settings.len() >= 19 && settings.contains(&"PORTAL_DB_MAX_CONNECTIONS"), "{settings:?}");
    let readme = readme();
    for setting in settings {
        assert!(readme.contains(&format!("| `{setting}` |")), "{setting} is not in the README's settings table");
    }
}

#[test]
fn the_readme_sends_a_newcomer_to_no_file_outside_the_repository() {
    let readme = readme();
    for outside in ["../", "shared/", "DESIGN.md", "seed/"] {
        assert!(!readme.contains(outside), "the README refers to {outside}");
    }
    // Every relative link names a file of the repository.
    for link in readme.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
        if link.starts_with("http") || link.starts_with('#') || link.starts_with("mailto:") {
            continue;
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(link);
        assert!(path.exists(), "the README links to {link}, which the repository does not hold");
    }
}

#[test]
fn the_readme_says_what_demo_needs_and_how_to_start_over() {
    let readme = readme();
    assert!(readme.contains("`--demo` needs an empty database, or one that holds only the demo data"));
    assert!(readme.contains("rm -rf ./data && cargo run --release -- serve --demo"));
}
