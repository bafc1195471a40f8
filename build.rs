//! Tells the tests whether the shared capture corpus (`../shared/captures`) is here. Without it,
//! the tests that need it are built as ignored (`cfg(no_shared_captures)`), so `cargo test` lists
//! them as skipped instead of passing them without checking anything.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_shared_captures)");
    let corpus = Path::new("../shared/captures");
    if corpus.is_dir() {
        println!("cargo::rerun-if-changed={}", corpus.display());
    } else {
        println!("cargo::rustc-cfg=no_shared_captures");
        // Not the missing folder: Cargo treats a missing path as changed, which would rerun this
        // script and rebuild the crate on every build. After adding the corpus, `touch build.rs`.
        println!("cargo::rerun-if-changed=build.rs");
    }
}
