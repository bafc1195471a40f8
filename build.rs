//! Tells the tests whether the shared capture corpus (`../shared/captures`) is here, and whether
//! a Python with DuckDB, pandas and polars is named (`SOCKSCOPE_PYTHON`, as `.ci/run` sets it).
//! Without them, the tests that need them are built as ignored (`cfg(no_shared_captures)`,
//! `cfg(no_dataframe_python)`), so `cargo test` lists them as skipped instead of passing them
//! without checking anything.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_shared_captures)");
    println!("cargo::rustc-check-cfg=cfg(no_dataframe_python)");
    println!("cargo::rerun-if-env-changed=SOCKSCOPE_PYTHON");
    if std::env::var_os("SOCKSCOPE_PYTHON").is_none() {
        println!("cargo::rustc-cfg=no_dataframe_python");
    }
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
