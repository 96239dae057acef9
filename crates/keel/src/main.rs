//! `keel`: the one binary. Parses arguments and dispatches; errors become a
//! message and an exit code, never a backtrace.

mod cli;
mod config;
mod data_cmd;
mod features_cmd;
mod models_cmd;
mod monitor_cmd;
mod pipeline_cmd;
mod serve_cmd;
mod server_cmd;
mod sweep_cmd;
mod validate_cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let result = match args.command {
        cli::Command::Server(flags) => server_cmd::run(flags),
        cli::Command::Models(args) => models_cmd::run(args),
        cli::Command::Data(command) => data_cmd::run(command),
        cli::Command::Serve(flags) => serve_cmd::run(flags),
        cli::Command::Predict(flags) => serve_cmd::predict(flags),
        cli::Command::Monitor(command) => monitor_cmd::run(command),
        cli::Command::Features(args) => features_cmd::run(args),
        cli::Command::Repro(args) => pipeline_cmd::repro(args),
        cli::Command::Status(args) => pipeline_cmd::status(args),
        cli::Command::Dag(args) => pipeline_cmd::dag(args),
        cli::Command::Sweep(args) => sweep_cmd::sweep(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
