//! An open-loop load generator: requests leave at a fixed rate whether or not earlier ones
//! were answered, and each latency counts from when its request was due, not from when it was
//! sent, so a slow answer cannot hide the requests that would have queued behind it (no
//! coordinated omission). wrk's closed loop, by contrast, sends nothing while a connection
//! waits, so its percentiles leave out exactly the stalls they should show.
//!
//! Each request gets its own `X-GitHub-Delivery`, so every one is a new delivery written and
//! fsynced: a generator that repeats one header set (oha, hey) measures only redeliveries,
//! which the inbox answers from memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

/// What one open-loop run measured.
pub struct Report {
    /// Requests sent.
    pub sent: usize,
    /// Answers with a 2xx status.
    pub ok: usize,
    /// The first few answers that were not 2xx, or requests that got no answer.
    pub failures: Vec<String>,
    /// Latency from each request's due time to its whole answer, sorted.
    pub latencies: Vec<Duration>,
    /// How late the generator itself handed each request over, sorted: its own error, which
    /// the latencies include.
    pub send_delays: Vec<Duration>,
    /// Wall time from the first request due to the last answer.
    pub elapsed: Duration,
}

/// The `p`-quantile (0.0 to 1.0) of sorted durations, in milliseconds.
pub fn ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// Posts `body` with `headers` plus a fresh `X-GitHub-Delivery` (`{prefix}-{n}`) to `url`,
/// `rate` times a second for `secs` seconds, from its own thread and runtime.
pub fn run(url: &str, headers: &[(String, String)], body: Vec<u8>, prefix: &str, rate: u32, secs: u64) -> Report {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let total = rate as u64 * secs;
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let start = Instant::now() + Duration::from_millis(50);
    // A plain thread paces the requests: its sleeps are finer than the runtime's 1 ms timer.
    let pacer = std::thread::spawn(move || {
        let mut delays = Vec::with_capacity(total as usize);
        for n in 0..total {
            let due = start + Duration::from_secs_f64(n as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            delays.push(due.elapsed());
            if tx.send((n, due)).is_err() {
                break;
            }
        }
        delays.sort();
        delays
    });
    let body = bytes::Bytes::from(body);
    let headers = headers.to_vec();
    let url = url.to_string();
    let prefix = prefix.to_string();
    let results = rt.block_on(async move {
        // A cap on requests in flight keeps a stalled server from exhausting ports; a request
        // waiting for a slot still counts its wait.
        let slots = Arc::new(Semaphore::new(1024));
        let mut tasks = Vec::with_capacity(total as usize);
        while let Some((n, due)) = rx.recv().await {
            let mut req = client.post(&url).body(body.clone());
            for (k, v) in &headers {
                req = req.header(k, v);
            }
            let req = req.header("X-GitHub-Delivery", format!("{prefix}-{n}"));
            let slots = Arc::clone(&slots);
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire_owned().await.unwrap();
                let answer = match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        resp.bytes().await.map(|_| status).map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                };
                (due.elapsed(), answer)
            }));
        }
        let mut results = Vec::with_capacity(tasks.len());
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results
    });
    let send_delays = pacer.join().unwrap();
    let elapsed = start.elapsed();
    let mut report = Report {
        sent: results.len(),
        ok: 0,
        failures: Vec::new(),
        latencies: Vec::with_capacity(results.len()),
        send_delays,
        elapsed,
    };
    for (latency, answer) in results {
        report.latencies.push(latency);
        match answer {
            Ok(status) if status.is_success() => report.ok += 1,
            Ok(status) if report.failures.len() < 5 => report.failures.push(format!("answered {status}")),
            Err(e) if report.failures.len() < 5 => report.failures.push(e),
            _ => {}
        }
    }
    report.latencies.sort();
    report
}
