//! `natter bench`: a load generator for natter and for any IRC server.
//!
//! Scenarios (see [`Scenario`]): fan-out in a room, direct-message pairs, both paced
//! for latency below saturation, idle clients (with the server's memory per client),
//! and registrations per second. Over `tcp://` it speaks plain IRC, so ngircd,
//! InspIRCd or ircd-hybrid can be measured with the same load as natter; over `udp://`
//! it uses natter's reliable mode.
//!
//! The generator is built not to be the bottleneck: receivers count deliveries by
//! scanning raw bytes ([`scan`]) instead of parsing, senders write prebuilt chunks of
//! many lines at once with Nagle off, connections are set up in parallel. Latency
//! comes from timestamps in a sample of messages, into an HDR histogram. Every run is
//! bounded by its counts and by `--timeout`, and only loopback servers are loaded
//! unless `--allow-remote` says otherwise.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

pub mod args;
pub mod link;
pub mod progress;
pub mod report;
pub mod scan;
pub mod scenarios;
pub mod sys;
pub mod traffic;

pub use args::{BenchArgs, Plan, Scenario};
pub use report::Report;

/// Runs `natter bench` and says how it went: 0 when the run completed its counts, 2
/// when it stopped short (the table says what it got), 1 when it could not run.
pub fn run(args: BenchArgs) -> ExitCode {
    match run_args(&args) {
        Ok(report) if report.complete => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(2),
        Err(e) => {
            eprintln!("natter bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Checks the arguments, runs the scenario, prints the table and writes the JSON.
pub fn run_args(args: &BenchArgs) -> Result<Report> {
    let plan = args.plan()?;
    let files = match plan.scenario {
        args::Scenario::Fanout | args::Scenario::FanoutPaced => plan.members,
        args::Scenario::Dm | args::Scenario::DmPaced => plan.pairs * 2,
        args::Scenario::Idle => plan.clients,
        args::Scenario::Connect => plan.in_flight,
    };
    let (_, warning) = sys::raise_nofile(files as u64 + 256);
    if let Some(w) = warning {
        bail!("{w}");
    }
    let report = run_plan(&plan)?;
    print!("{}", report.table());
    if let Some(path) = &plan.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write the JSON to {}", path.display()))?;
    }
    Ok(report)
}

/// Runs a checked plan on a runtime of its own.
pub fn run_plan(plan: &Plan) -> Result<Report> {
    let runtime = if plan.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(plan.threads)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let progress = progress::Progress::new();
        let _shown = progress.show(plan.quiet);
        // The scenarios stop at their own deadline; this is the guard behind it.
        let limit = plan.timeout + Duration::from_secs(30);
        match tokio::time::timeout(limit, scenarios::run(plan, Arc::clone(&progress))).await {
            Ok(r) => r,
            Err(_) => bail!("the run did not stop within {limit:?}: a bug in natter bench"),
        }
    });
    // Thousands of connections may still be closing: do not wait for them.
    runtime.shutdown_background();
    report
}
