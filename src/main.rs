use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use sockscope::cli::Cli;
use sockscope::commands;

fn main() -> ExitCode {
    let config = match Cli::parse().command.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sockscope: {e}");
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = commands::run(config, &mut out).and_then(|code| out.flush().map(|_| code));
    match result {
        Ok(code) => code,
        // `sockscope ... | head` closing the pipe is a normal end.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sockscope: cannot write output: {e}");
            ExitCode::from(2)
        }
    }
}
