//! Layering: HTTP handlers reach data only through the use cases in `app`, never through
//! `storage` directly, so every business rule has one home.

use std::path::{Path, PathBuf};

/// Files allowed to name `storage`, each with the reason (none: keep it that way).
const ALLOWED: &[&str] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/http") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn http_does_not_use_storage() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/http"), &mut files);
    assert!(files.len() > 5, "src/http not found: {files:?}");
    let offenders: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(root)
                .expect("under the crate")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .filter(|rel| !ALLOWED.contains(&rel.as_str()))
        .filter(|rel| {
            std::fs::read_to_string(root.join(rel))
                .expect("read source")
                .to_lowercase()
                .contains("storage")
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "these files under src/http mention storage; go through crate::app instead: {offenders:?}"
    );
}
