//! The like-for-like reference of `bench/sms.sh`: a bare reqwest loop doing what the Twilio
//! preset does per message, and nothing else — a form POST (To, Body, From) with basic auth to
//! `/2010-04-01/Accounts/{sid}/Messages.json`, the JSON reply read for its `sid` — with the same
//! number of requests in flight. No CSV, templates, ledger or rate limiter.
//!
//!     cargo run --release --example http_reference -- BASE_URL MESSAGES CONCURRENCY [WORKERS]
//!
//! WORKERS (default 1) is the tokio runtime's worker threads; the loop itself runs on the main
//! thread, and hyper's connection tasks on the workers. On 2 cores, against the same sink, the
//! loop runs in one of two modes from run to run, about 50,000 and about 80,000 messages/s
//! for 50,000 messages; on one worker it is in the fast one more often than on
//! `#[tokio::main]`'s one per core, so one worker is the reference `bench/sms.sh` holds
//! outreach to.
//!
//! Prints one line: `reference: N messages in S s = R messages/s`.

use futures::StreamExt;

const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// About as long as the shipped SMS.
const BODY: &str = "Riverside Physio: Hi Pat, lower back or hip pain? A tight psoas muscle may be \
                    the cause. Get a FREE phone assessment & treatment plan: \
                    https://riverside.example/book or call +1 312 555 0100. Reply STOP to opt out";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, n, concurrency, workers) = match &args[..] {
        [_, base, n, c] => (base, n, c, "1"),
        [_, base, n, c, w] => (base, n, c, w.as_str()),
        _ => {
            eprintln!("usage: http_reference BASE_URL MESSAGES CONCURRENCY [WORKERS]");
            std::process::exit(2);
        }
    };
    let workers: usize = workers.parse().expect("WORKERS is a number");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run(base, n, concurrency));
}

async fn run(base: &str, n: &str, concurrency: &str) {
    let n: usize = n.parse().expect("MESSAGES is a number");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY is a number");
    let url = format!("{base}/2010-04-01/Accounts/{ACCOUNT}/Messages.json");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("a client");
    let started = std::time::Instant::now();
    let ok = futures::stream::iter(0..n)
        .map(|i| {
            let client = &client;
            let url = &url;
            async move {
                let to = format!("+1312{:03}{:04}", 200 + i / 10000, i % 10000);
                let form = [
                    ("To", to.as_str()),
                    ("Body", BODY),
                    ("From", "+13125550100"),
                ];
                let reply = client
                    .post(url)
                    .basic_auth(ACCOUNT, Some("token"))
                    .form(&form)
                    .send()
                    .await
                    .ok()?;
                let status = reply.status();
                let body = reply.bytes().await.ok()?;
                let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
                (status.as_u16() == 201 && v["sid"].is_string()).then_some(())
            }
        })
        .buffer_unordered(concurrency)
        .filter(|r| std::future::ready(r.is_some()))
        .count()
        .await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(ok, n, "every request must succeed");
    println!(
        "reference: {n} messages in {secs:.2} s = {:.0} messages/s",
        n as f64 / secs
    );
}
