//! The load client of `bench/listen.sh`: sends pre-built HTTP/1.1 requests, each once, over
//! CONCURRENCY keep-alive connections (one request in flight on each, as a provider's callbacks
//! arrive), and says how each was answered. `oha` and its kind repeat one request; receipts
//! must be distinct and each signed, so the requests are built beforehand (bench/listen-requests.py)
//! and this only writes their bytes and reads the answers: a status line, headers, and a body
//! of `content-length` bytes.
//!
//!     cargo run --release --example listen_load -- ADDR REQUESTS CONCURRENCY [OK_LOG]
//!
//! REQUESTS is a file of whole requests one after the other, each with its `content-length`.
//! With OK_LOG, the index (from 0, in the file's order) of every request answered 2xx is
//! written there, one a line: what a killed server owes. A request whose connection fails is
//! not retried; it counts as unanswered, and the next one opens a new connection.
//!
//! Prints one JSON line: requests, 2xx, other statuses by code, unanswered, seconds (from the
//! first request to the last answer), requests/s, and latency percentiles in milliseconds.
//! It runs on one thread: it should cost the machine a small part of what the server does
//! (bench/listen.sh measures it against a server that answers without writing).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How one request went: its index, its status (0: no answer) and its latency.
type Outcome = (usize, u16, Duration);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (addr, file, concurrency, ok_log) = match &args[..] {
        [_, a, f, c] => (a, f, c, None),
        [_, a, f, c, l] => (a, f, c, Some(l)),
        _ => {
            eprintln!("usage: listen_load ADDR REQUESTS CONCURRENCY [OK_LOG]");
            std::process::exit(2);
        }
    };
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY is a number");
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let requests = split(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(requests.into_iter().map(<[u8]>::to_vec).collect());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (outcomes, seconds) = runtime.block_on(run(addr.clone(), requests.clone(), concurrency));
    if let Some(path) = ok_log {
        let mut ok: Vec<usize> = outcomes
            .iter()
            .filter(|(_, s, _)| (200..300).contains(s))
            .map(|(i, _, _)| *i)
            .collect();
        ok.sort_unstable();
        let text: String = ok.iter().map(|i| format!("{i}\n")).collect();
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    println!("{}", report(&outcomes, requests.len(), seconds));
}

/// The requests of a file: each a head ending in a blank line, then `content-length` bytes.
fn split(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let head = find(bytes, b"\r\n\r\n")
            .ok_or_else(|| format!("request {}: no end of head", out.len()))?
            + 4;
        let length = content_length(&bytes[..head]).unwrap_or(0);
        let end = head + length;
        if end > bytes.len() {
            return Err(format!("request {}: body cut short", out.len()));
        }
        out.push(&bytes[..end]);
        bytes = &bytes[end..];
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A head's `content-length`, if it has one.
fn content_length(head: &[u8]) -> Option<usize> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let line = std::str::from_utf8(line).ok()?.trim_end();
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

async fn run(addr: String, requests: Arc<Vec<Vec<u8>>>, concurrency: usize) -> (Vec<Outcome>, f64) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker(addr.clone(), requests.clone(), next.clone())))
        .collect();
    let mut outcomes = Vec::with_capacity(requests.len());
    for w in workers {
        outcomes.extend(w.await.expect("a worker"));
    }
    (outcomes, started.elapsed().as_secs_f64())
}

/// Takes the next request until none is left; one connection, opened again after a failure.
async fn worker(addr: String, requests: Arc<Vec<Vec<u8>>>, next: Arc<AtomicUsize>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(request) = requests.get(i) else {
            return outcomes;
        };
        let sent = Instant::now();
        let answer = async {
            if conn.is_none() {
                let stream = TcpStream::connect(&addr).await?;
                stream.set_nodelay(true)?;
                conn = Some(stream);
            }
            let stream = conn.as_mut().expect("connected");
            stream.write_all(request).await?;
            exchange(stream, &mut buf).await
        }
        .await;
        match answer {
            Ok((status, keep)) => {
                outcomes.push((i, status, sent.elapsed()));
                if !keep {
                    conn = None;
                }
            }
            Err(_) => {
                outcomes.push((i, 0, sent.elapsed()));
                conn = None;
            }
        }
    }
}

/// Reads one answer: its status, and whether the connection stays open.
async fn exchange(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(u16, bool)> {
    buf.clear();
    let head = loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            break end + 4;
        }
        read_more(stream, buf).await?;
    };
    let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
    let status: u16 = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    if text.contains("\ntransfer-encoding:") {
        return Err(std::io::Error::other("a chunked answer: not read here"));
    }
    let length = content_length(&buf[..head]).unwrap_or(0);
    while buf.len() < head + length {
        read_more(stream, buf).await?;
    }
    Ok((status, !text.contains("\nconnection: close")))
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// The JSON line printed.
fn report(outcomes: &[Outcome], requests: usize, seconds: f64) -> String {
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut latencies: Vec<Duration> = Vec::with_capacity(outcomes.len());
    for (_, status, latency) in outcomes {
        *by_status.entry(*status).or_default() += 1;
        if *status != 0 {
            latencies.push(*latency);
        }
    }
    latencies.sort_unstable();
    let ms = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let ok: usize = by_status
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let unanswered = by_status.get(&0).copied().unwrap_or(0);
    let other: BTreeMap<String, usize> = by_status
        .iter()
        .filter(|(s, _)| **s != 0 && !(200..300).contains(*s))
        .map(|(s, n)| (s.to_string(), *n))
        .collect();
    serde_json::json!({
        "requests": requests,
        "ok": ok,
        "other": other,
        "unanswered": unanswered,
        "seconds": seconds,
        "per_second": ok as f64 / seconds,
        "p50_ms": ms(0.50),
        "p99_ms": ms(0.99),
        "max_ms": latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    })
    .to_string()
}
