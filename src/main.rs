//! The `udts-exporter` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    udts_exporter::cli::main()
}
