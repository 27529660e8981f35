//! A local SMS gateway sink for `bench/sms.sh`: HTTP/1.1 with keep-alive on plain tokio, answering
//! every POST like Twilio's Messages API (201, `{"sid": …}`) and every GET like its account
//! resource (200), as fast as it can. It prints the address it listens on, then serves until
//! killed.
//!
//!     cargo run --release --example gateway_sink [127.0.0.1:0]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("{}", listener.local_addr()?);
    let count = Arc::new(AtomicU64::new(0));
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let count = Arc::clone(&count);
        tokio::spawn(async move {
            let _ = serve(socket, &count).await;
        });
    }
}

/// One connection: requests in turn until the client closes it.
async fn serve(socket: TcpStream, count: &AtomicU64) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::with_capacity(16 * 1024, read);
    let mut line = String::new();
    let mut body = Vec::new();
    let mut out = Vec::with_capacity(256);
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let get = line.starts_with("GET ");
        let (mut length, mut close) = (0usize, false);
        loop {
            line.clear();
            if read.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.trim().eq_ignore_ascii_case("close");
                }
            }
        }
        body.resize(length, 0);
        read.read_exact(&mut body).await?;
        let n = count.fetch_add(1, Ordering::Relaxed);
        let (status, payload) = if get {
            (
                "200 OK",
                r#"{"sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","status":"active"}"#.to_string(),
            )
        } else {
            (
                "201 Created",
                format!(r#"{{"sid":"SM{n:032x}","status":"queued"}}"#),
            )
        };
        out.clear();
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{payload}",
                payload.len()
            )
            .as_bytes(),
        );
        write.write_all(&out).await?;
        if close {
            return Ok(());
        }
    }
}
