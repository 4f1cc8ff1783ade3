//! The load generator: N keep-alive HTTP/1.1 connections on loopback, each
//! sending its next request as soon as the previous answer arrived (closed
//! loop, like `wrk`), for a fixed duration; every latency is kept and
//! sorted at the end for exact percentiles.
//!
//! Requests are prebuilt bytes and responses are parsed just enough to find
//! their end (status line, `content-length` or chunked): the generator
//! shares the machine's cores with the server it measures, so it must cost
//! as little as possible, and the same for every server.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// One request to send, already serialised.
pub type RawRequest = Arc<[u8]>;

/// Serialise a request. `token`: a bearer token; `body`: JSON.
pub fn request(method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> RawRequest {
    let mut text = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    if let Some(token) = token {
        text.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    match body {
        Some(body) => text.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => text.push_str("\r\n"),
    }
    Arc::from(text.into_bytes())
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Answers with a 2xx status, per second of the measured duration.
    pub ok_per_sec: f64,
    /// Answers with another status, plus connection failures.
    pub errors: u64,
    /// Latency percentiles over every answer, 2xx or not.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Worst.
    pub max: Duration,
    /// The first unexpected status seen and its body, to explain errors.
    pub first_error: Option<String>,
    /// CPU time the server used per answer during the measured duration
    /// (all its threads): what a request costs whatever else the machine
    /// runs, unlike req/s.
    pub server_cpu_per_request: Duration,
}

/// Run `connections` connections against `addr` (the server process
/// `pid`) for `warmup` (not measured) then `duration`. Connection `i`
/// cycles through `requests[i % requests.len()]`.
pub async fn run(
    addr: SocketAddr,
    pid: u32,
    requests: Vec<Vec<RawRequest>>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Report> {
    anyhow::ensure!(!requests.is_empty(), "no requests to send");
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = Vec::with_capacity(connections);
    for index in 0..connections {
        let mine = requests[index % requests.len()].clone();
        tasks.push(tokio::spawn(connection(addr, mine, start, end)));
    }
    let server_cpu = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        let before = crate::servers::cpu_time(pid);
        tokio::time::sleep_until(end.into()).await;
        crate::servers::cpu_time(pid).saturating_sub(before)
    });
    let mut latencies = Vec::new();
    let mut ok = 0u64;
    let mut errors = 0u64;
    let mut first_error = None;
    for task in tasks {
        let result = task.await.context("a load task panicked")?;
        latencies.extend(result.latencies);
        ok += result.ok;
        errors += result.errors;
        if first_error.is_none() {
            first_error = result.first_error;
        }
    }
    let server_cpu = server_cpu.await.context("the CPU sampler panicked")?;
    let answers = u32::try_from((ok + errors).max(1)).unwrap_or(u32::MAX);
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        Duration::from_micros(latencies.get(index).copied().unwrap_or(0))
    };
    Ok(Report {
        ok_per_sec: ok as f64 / duration.as_secs_f64(),
        errors,
        p50: percentile(0.50),
        p99: percentile(0.99),
        max: Duration::from_micros(latencies.last().copied().unwrap_or(0)),
        first_error,
        server_cpu_per_request: server_cpu / answers,
    })
}

struct ConnectionResult {
    latencies: Vec<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

async fn connection(
    addr: SocketAddr,
    requests: Vec<RawRequest>,
    start: Instant,
    end: Instant,
) -> ConnectionResult {
    let mut result = ConnectionResult {
        latencies: Vec::with_capacity(16 * 1024),
        ok: 0,
        errors: 0,
        first_error: None,
    };
    let mut buffer = Vec::with_capacity(16 * 1024);
    let mut stream: Option<TcpStream> = None;
    let mut next = 0usize;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let conn = match stream.as_mut() {
            Some(conn) => conn,
            None => match TcpStream::connect(addr).await {
                Ok(conn) => {
                    let _ = conn.set_nodelay(true);
                    stream.insert(conn)
                }
                Err(error) => {
                    if sent >= start {
                        result.errors += 1;
                    }
                    result
                        .first_error
                        .get_or_insert(format!("connect: {error}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let request = &requests[next % requests.len()];
        next += 1;
        let answer = exchange(conn, request, &mut buffer).await;
        let measured = sent >= start;
        match answer {
            Ok((status, keep_alive)) => {
                if measured {
                    result
                        .latencies
                        .push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
                    if (200..300).contains(&status) {
                        result.ok += 1;
                    } else {
                        result.errors += 1;
                    }
                }
                if !(200..300).contains(&status) && result.first_error.is_none() {
                    result.first_error = Some(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&buffer)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    ));
                }
                if !keep_alive {
                    stream = None;
                }
            }
            Err(error) => {
                if measured {
                    result.errors += 1;
                }
                result.first_error.get_or_insert(format!("{error:#}"));
                stream = None;
            }
        }
    }
    result
}

/// Send `request` and read one response; returns its status and whether
/// the connection stays open. `buffer` holds the response's body after.
async fn exchange(
    conn: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> anyhow::Result<(u16, bool)> {
    conn.write_all(request).await?;
    buffer.clear();
    // Read until the end of the headers.
    let header_end = loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            break at + 4;
        }
        read_more(conn, buffer).await?;
    };
    let head = std::str::from_utf8(&buffer[..header_end]).context("non-UTF-8 response head")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .context("no status line")?;
    let mut length = None;
    let mut chunked = false;
    let mut keep_alive = true;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad content-length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    buffer.drain(..header_end);
    if chunked {
        read_chunked(conn, buffer).await?;
    } else {
        let length = length.unwrap_or(0);
        while buffer.len() < length {
            read_more(conn, buffer).await?;
        }
    }
    Ok((status, keep_alive))
}

/// Read a chunked body; `buffer` starts with what was read past the head.
async fn read_chunked(conn: &mut TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut at = 0;
    loop {
        let line_end = loop {
            if let Some(end) = find(&buffer[at..], b"\r\n") {
                break at + end;
            }
            read_more(conn, buffer).await?;
        };
        let size_text = std::str::from_utf8(&buffer[at..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        let chunk_end = line_end + 2 + size + 2;
        while buffer.len() < chunk_end {
            read_more(conn, buffer).await?;
        }
        at = chunk_end;
        if size == 0 {
            return Ok(());
        }
    }
}

async fn read_more(conn: &mut TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 8192];
    let read = conn.read(&mut chunk).await?;
    anyhow::ensure!(read > 0, "the server closed the connection");
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
