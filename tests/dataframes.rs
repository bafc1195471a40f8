//! The analyst's workflow for real: the machine outputs read by DuckDB, pandas and polars with
//! default settings, and the README's DuckDB query run as written (`tools/check_dataframes.py`).
//! Needs `SOCKSCOPE_PYTHON`: a Python with duckdb, pandas, polars and pyarrow (`.ci/run` makes one).

mod common;

use common::*;

#[test]
#[cfg_attr(no_dataframe_python, ignore = "needs SOCKSCOPE_PYTHON with duckdb, pandas, polars and pyarrow")]
fn duckdb_pandas_and_polars_read_every_column() {
    let python = std::env::var("SOCKSCOPE_PYTHON").expect("SOCKSCOPE_PYTHON names a Python");
    let work = std::env::temp_dir().join(format!("sockscope-dataframes-{}", std::process::id()));
    let mut captures: Vec<_> =
        ["teardowns.pcap", "udp_and_reuse.pcapng", "ipv6.pcap"].map(|n| samples().join(n)).into();
    // A tunnelled connection, for the list of its parents.
    let gtp = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/captures/zeek_tunnels_gtp_gtp2_different_udp_port.pcap");
    if gtp.exists() {
        captures.push(gtp);
    }
    let out = std::process::Command::new(python)
        .arg(samples().join("../tools/check_dataframes.py"))
        .arg(env!("CARGO_BIN_EXE_sockscope"))
        .arg(&work)
        .args(&captures)
        .output()
        .expect("run python");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok: the README's DuckDB query counts every connection"), "{text}");
    std::fs::remove_dir_all(&work).unwrap();
}
