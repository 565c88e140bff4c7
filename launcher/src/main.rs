//! The `starflow` binary: parse the command line, set up logging, dispatch.

mod bench;
mod bootstrap;
mod cli;
mod cluster;
mod connection;
mod duplicates;
mod hats;
mod output;
mod plot;
mod progress;
mod query;
mod repl;
mod report;
mod serve;
mod trace;
mod wire;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps freed memory for reuse: every query allocates and frees batches of the
/// same sizes, which glibc's allocator returns to the kernel and faults back in each time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let _trace = match trace::init(cli.log_level.as_deref(), cli.verbose, cli.trace_out.as_deref()) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The REPL printed the failing statement's error as it arrived.
        Err(e) if e.is::<repl::StatementFailed>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Gen { what } => query::generate(what),
        cli::Command::Query(args) => query::run(&args),
        cli::Command::Demo { dir, workers } => query::demo(&dir, workers),
        cli::Command::Serve(args) => serve::run(&args),
        cli::Command::Repl(args) => repl::run(&args),
        cli::Command::Ingest(args) => repl::ingest(&args),
        cli::Command::Bench(args) => bench::run(&args),
        cli::Command::Plot { what: cli::PlotCommand::Density(args) } => plot::density(&args),
        cli::Command::Duplicates(args) => duplicates::run(&args),
        cli::Command::Hats { what: cli::HatsCommand::Import(args) } => hats::import(&args),
        cli::Command::Slurm { what: cli::SlurmCommand::Script(a) } => {
            let options = bootstrap::script::ScriptOptions {
                nodes: a.nodes,
                cpus_per_node: a.cpus_per_node,
                tasks_per_node: a.tasks_per_node,
                mem: a.mem,
                time: a.time,
                partition: a.partition,
                account: a.account,
                job_name: a.job_name,
                interface: a.interface,
                output: a.output,
            };
            let exe = std::env::current_exe()?;
            print!("{}", bootstrap::script::sbatch_script(&options, &exe.to_string_lossy(), &a.args));
            Ok(())
        }
    }
}
