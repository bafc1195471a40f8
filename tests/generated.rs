//! Captures from the bench generator (`tools/gen.rs`), small: thousands of connections over
//! thousands of address pairs, so every table gets a share and the numbering has to merge them.

#[path = "../tools/gen.rs"]
#[allow(dead_code)] // its `main` is for the command line
mod gen;

mod common;

use common::*;

#[test]
fn several_tables_give_what_one_table_gives_on_generated_traffic() {
    for (profile, packets) in
        [("realistic", 20_000), ("tiny", 20_000), ("manyconn", 40_000), ("scan", 20_000)]
    {
        let path = std::env::temp_dir().join(format!("sockscope-gen-{profile}-{}.pcap", std::process::id()));
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        gen::write_capture(gen::profile(profile).unwrap(), packets, 7, file).unwrap();
        let f = path.to_str().unwrap();
        // JSON lines are formatted on two threads with more than one job; a JSON document on one.
        for format in ["json", "jsonl"] {
            let run = |jobs| sockscope(&["conns", "--format", format, "--jobs", jobs, f]);
            let one = run("1");
            assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
            let conns = stdout(&one).matches("\"proto\":").count();
            assert!(conns > 1000, "{profile}: {conns} connections");
            for jobs in ["2", "3", "5"] {
                assert_eq!(stdout(&one), stdout(&run(jobs)), "{profile} {format} --jobs {jobs}");
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}
