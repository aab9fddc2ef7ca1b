//! The `wharf` binary: parse the command line, run the command, map errors to exit codes.
use clap::Parser;

fn main() {
    // The runtime's helper processes (supervisor, container init, exec) are this binary
    // re-executed; they must run before anything else, single-threaded.
    let args = std::env::args_os().collect::<Vec<_>>();
    wharf::runtime::linux::hidden_command(&args);
    wharf::network::hidden_command(&args);
    let cli = wharf::cli::Cli::parse_from(wharf::cli::docker_compatible_args(args));
    let code = match wharf::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            match e.downcast_ref::<wharf::cli::Reported>() {
                Some(r) => eprint!("{r}"),
                None => eprintln!("error: {e:#}"),
            }
            1
        }
    };
    std::process::exit(code);
}
