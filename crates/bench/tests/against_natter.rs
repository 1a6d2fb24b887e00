//! natter bench against a natter server in this process, over real loopback sockets:
//! every scenario completes its counts, and what it reports adds up. Small counts, so
//! that the suite stays quick; every run is bounded by its --timeout.

use clap::Parser;
use natter_bench::{BenchArgs, Report};
use natter_testkit::TestServer;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

async fn bench(url: String, argv: &[&str]) -> Report {
    let mut full = vec!["bench".to_owned(), url];
    full.extend(argv.iter().map(|s| (*s).to_owned()));
    full.extend(["--quiet", "--timeout", "30", "--threads", "1"].map(str::to_owned));
    let cli = Cli::try_parse_from(&full).expect("valid arguments");
    let plan = cli.args.plan().expect("a valid plan");
    // The generator runs its own runtime, so it goes on a thread of its own.
    tokio::task::spawn_blocking(move || natter_bench::run_plan(&plan))
        .await
        .expect("the bench thread")
        .expect("the run")
}

fn figure(r: &Report, key: &str) -> f64 {
    r.figures
        .iter()
        .find(|f| f.key == key)
        .unwrap_or_else(|| panic!("no {key} in\n{}", r.table()))
        .value
}

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.limits.flood_burst = 0;
        c.limits.flood_rate_per_sec = 0.0;
        c.limits.connections_per_ip = 0;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_message_to_every_other_member() {
    let s = server().await;
    let r = bench(
        format!("tcp://{}", s.tcp_addr()),
        &[
            "--members",
            "6",
            "--senders",
            "2",
            "--messages",
            "300",
            "--sample",
            "16",
        ],
    )
    .await;
    assert!(r.complete, "{}", r.table());
    assert_eq!(figure(&r, "delivered"), (2 * 300 * 5) as f64);
    assert!(figure(&r, "deliveries_per_sec") > 0.0);
    let lat = r.latency.as_ref().expect("sampled latency");
    // The first message of each write of 16 is stamped, and seen by the 5 others.
    assert_eq!(lat.samples, 2 * 300u64.div_ceil(16) * 5, "{}", r.table());
    assert!(lat.p50 <= lat.p99 && lat.p99 <= lat.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_dm_stamps_every_message() {
    let s = server().await;
    let r = bench(
        format!("tcp://{}", s.tcp_addr()),
        &[
            "--scenario",
            "dm-paced",
            "--pairs",
            "3",
            "--messages",
            "20",
            "--rate",
            "200",
        ],
    )
    .await;
    assert!(r.complete, "{}", r.table());
    assert_eq!(figure(&r, "delivered"), 120.0);
    assert_eq!(r.latency.as_ref().expect("latency").samples, 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_all_answer_and_memory_is_reported() {
    let s = server().await;
    let pid = std::process::id().to_string();
    let r = bench(
        format!("tcp://{}", s.tcp_addr()),
        &[
            "--scenario",
            "idle",
            "--clients",
            "50",
            "--hold",
            "0.1",
            "--pid",
            &pid,
        ],
    )
    .await;
    assert!(r.complete, "{}", r.table());
    assert_eq!(figure(&r, "alive"), 50.0);
    assert!(figure(&r, "rss_after_kib") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_registers_every_client() {
    let s = server().await;
    let r = bench(
        format!("tcp://{}", s.tcp_addr()),
        &[
            "--scenario",
            "connect",
            "--clients",
            "40",
            "--in-flight",
            "8",
        ],
    )
    .await;
    assert!(r.complete, "{}", r.table());
    assert_eq!(figure(&r, "registrations"), 40.0);
    assert_eq!(figure(&r, "failures"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_over_reliable_udp_completes_and_closes_its_sessions() {
    let s = server().await;
    let r = bench(
        format!("udp://{}", s.udp_addr()),
        &["--members", "4", "--senders", "2", "--messages", "100"],
    )
    .await;
    assert!(r.complete, "{}", r.table());
    assert_eq!(figure(&r, "delivered"), (2 * 100 * 3) as f64);
    assert_eq!(users_left(&s).await, ONLY_THE_WATCHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_over_reliable_udp_answer_and_close_their_sessions() {
    let s = server().await;
    let r = bench(
        format!("udp://{}", s.udp_addr()),
        &["--scenario", "idle", "--clients", "20", "--hold", "0.1"],
    )
    .await;
    assert!(r.complete, "{}", r.table());
    assert_eq!(figure(&r, "alive"), 20.0);
    assert_eq!(users_left(&s).await, ONLY_THE_WATCHER);
}

const ONLY_THE_WATCHER: &str = "There are 1 users and 0 invisible on 1 servers";

/// What LUSERS says of the server's users, asked by a client of its own. A bench
/// that closed its UDP sessions in order left none behind: the server tells the hub
/// before it confirms a close, so a line sent now is handled after the hub forgot
/// every bench client. (Left to the server's idle timeout, they would count for a
/// minute.)
async fn users_left(s: &TestServer) -> String {
    let mut watcher = natter_testkit::TestClient::connect_tcp(s).await;
    watcher.register("watcher").await;
    watcher.send("LUSERS").await;
    let users = watcher.expect_numeric("251").await;
    users.params.last().unwrap_or_default().to_owned()
}

/// A sender that pipelines over reliable UDP keeps reading what the room sends it. If
/// it stopped reading while it waited for room to send, the server would hold the
/// lines it has not read, stop taking anyone's lines while it is behind, and, once its
/// queue was full, drop it with "SendQ exceeded": the run would never complete. Each
/// sender here sends more than its session buffers, and each member receives more than
/// its queue holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_senders_keep_reading_while_they_pipeline() {
    let s = server().await;
    let r = bench(
        format!("udp://{}", s.udp_addr()),
        &["--members", "8", "--senders", "8", "--messages", "20000"],
    )
    .await;
    assert!(r.complete, "{}", r.table());
    assert_eq!(figure(&r, "delivered"), (8 * 20000 * 7) as f64);
}
