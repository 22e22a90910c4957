//! The soak test's load client (`proxy/soak.sh` starts it; see proxy/BENCHMARKS.md, "Soak").
//!
//! N clients send a mix of plain and streamed chat completions through the proxy for a given
//! time, each request a think time (uniform, mean `--think-ms`) after the previous one ended,
//! like users rather than a flood, with the client key read from a file (so a key rotation
//! reaches them); one control task asks the upstream directly, so that the
//! proxy's added latency can be told from the upstream's own. Every 10 s it samples the
//! proxy's RSS and open descriptors from /proc; at the end it writes `samples.csv`,
//! `windows.csv` and `summary.md` into the output directory.
//!
//! Outcomes: `ok` (a plain answer with choices, a stream ending in `[DONE]`), `failed` (any
//! other status, or no answer: what retries and fallback must absorb), `cut` (a stream that
//! started and then ended with an error event or a broken body: only mid-stream failover can
//! save those, so they are counted apart).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;

/// One finished request.
#[derive(Clone, Copy)]
struct Sample {
    /// Seconds since the start.
    at: f64,
    stream: bool,
    outcome: Outcome,
    /// Plain: until the whole answer; stream: until its first chunk (microseconds).
    latency_us: u64,
    /// Sent straight to the upstream (the control).
    direct: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Failed,
    Cut,
}

struct Args {
    proxy: String,
    direct: String,
    key_file: String,
    clients: usize,
    duration: Duration,
    stream_percent: u32,
    chunks: u32,
    delay_ms: u32,
    pid: u32,
    out: String,
    window: Duration,
    warmup: Duration,
    think_ms: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        proxy: String::new(),
        direct: String::new(),
        key_file: String::new(),
        clients: 50,
        duration: Duration::from_secs(1800),
        stream_percent: 30,
        chunks: 10,
        delay_ms: 20,
        pid: 0,
        out: ".".into(),
        window: Duration::from_secs(300),
        warmup: Duration::from_secs(300),
        think_ms: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--proxy" => a.proxy = value,
            "--direct" => a.direct = value,
            "--key-file" => a.key_file = value,
            "--clients" => a.clients = num(&value)? as usize,
            "--duration-secs" => a.duration = Duration::from_secs(num(&value)?),
            "--stream-percent" => a.stream_percent = num(&value)? as u32,
            "--chunks" => a.chunks = num(&value)? as u32,
            "--delay-ms" => a.delay_ms = num(&value)? as u32,
            "--pid" => a.pid = num(&value)? as u32,
            "--out" => a.out = value,
            "--window-secs" => a.window = Duration::from_secs(num(&value)?.max(1)),
            "--warmup-secs" => a.warmup = Duration::from_secs(num(&value)?),
            "--think-ms" => a.think_ms = num(&value)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.proxy.is_empty() || a.direct.is_empty() || a.key_file.is_empty() || a.pid == 0 {
        return Err("--proxy, --direct, --key-file and --pid are required".into());
    }
    Ok(a)
}

/// The current client key, re-read from its file every second.
fn key_watcher(path: String, key: Arc<Mutex<String>>, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(text) = tokio::fs::read_to_string(&path).await {
                let text = text.trim().to_owned();
                if !text.is_empty() {
                    *key.lock().unwrap_or_else(|p| p.into_inner()) = text;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

async fn one(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    (stream, direct): (bool, bool),
    chunks: u32,
    delay_ms: u32,
) -> (Outcome, u64) {
    let start = Instant::now();
    let body = format!(
        r#"{{"model":"fake-model","stream":{stream},"max_tokens":32,"messages":[{{"role":"user","content":"soak"}}]}}"#
    );
    let url = format!("{base}/v1/chat/completions?chunks={chunks}&delay_ms={delay_ms}");
    let mut request = http.post(url);
    if direct {
        // A fault injected on the control (a 300 s stall) must not stall the control.
        request = request.timeout(Duration::from_secs(2));
    }
    let sent = request
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let Ok(response) = sent else {
        return (Outcome::Failed, micros(start));
    };
    if response.status() != 200 {
        let _ = response.bytes().await;
        return (Outcome::Failed, micros(start));
    }
    if !stream {
        return match response.bytes().await {
            Ok(b) if memchr::memmem::find(&b, b"\"choices\"").is_some() => {
                (Outcome::Ok, micros(start))
            }
            _ => (Outcome::Failed, micros(start)),
        };
    }
    let mut body = response.bytes_stream();
    let mut first = None;
    let mut tail = Vec::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            return (Outcome::Cut, first.unwrap_or_else(|| micros(start)));
        };
        first.get_or_insert_with(|| micros(start));
        tail.extend_from_slice(&chunk);
        let keep = tail.len().saturating_sub(256);
        tail.drain(..keep);
    }
    let done = tail.ends_with(b"data: [DONE]\n\n");
    let outcome = if done { Outcome::Ok } else { Outcome::Cut };
    (outcome, first.unwrap_or_else(|| micros(start)))
}

fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

/// The proxy's resident memory (KiB) and open descriptors.
fn proc_sample(pid: u32) -> (u64, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    (rss, fds)
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Least-squares slope of `(x, y)`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.clients + 8)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap_or_default();
    let key = Arc::new(Mutex::new(String::new()));
    let stop = Arc::new(AtomicBool::new(false));
    key_watcher(a.key_file.clone(), key.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let samples = Arc::new(Mutex::new(Vec::<Sample>::with_capacity(1 << 20)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..=a.clients {
        // Task `clients` is the control, asking the upstream directly 10 times a second.
        let direct = c == a.clients;
        let (http, key, stop, samples) = (http.clone(), key.clone(), stop.clone(), samples.clone());
        let base = if direct {
            a.direct.clone()
        } else {
            a.proxy.clone()
        };
        let (percent, chunks, delay_ms, think) =
            (a.stream_percent, a.chunks, a.delay_ms, a.think_ms);
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let stream = !direct && fastrand::u32(0..100) < percent;
                let k = key.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let (outcome, latency_us) =
                    one(&http, &base, &k, (stream, direct), chunks, delay_ms).await;
                let at = start.elapsed().as_secs_f64();
                samples
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Sample {
                        at,
                        stream,
                        outcome,
                        latency_us,
                        direct,
                    });
                let pause = if direct {
                    100
                } else {
                    fastrand::u64(0..=2 * think)
                };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }));
    }
    // Resource samples every 10 s, with the request rate and p99 of the last 10 s.
    let mut resources = Vec::new();
    let mut seen = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    while start.elapsed() < a.duration {
        tick.tick().await;
        let (rss, fds) = proc_sample(a.pid);
        let all = samples.lock().unwrap_or_else(|p| p.into_inner());
        let recent: Vec<_> = all[seen..].iter().filter(|s| !s.direct).copied().collect();
        seen = all.len();
        drop(all);
        let mut lat: Vec<u64> = recent
            .iter()
            .filter(|s| !s.stream && s.outcome == Outcome::Ok)
            .map(|s| s.latency_us)
            .collect();
        lat.sort_unstable();
        let t = start.elapsed().as_secs_f64();
        resources.push((
            t,
            rss,
            fds,
            recent.len() as f64 / 10.0,
            quantile(&lat, 0.99),
        ));
        eprintln!(
            "soak: t={t:.0}s rss={rss}KiB fds={fds} rps={:.0} p99={:.2}ms",
            recent.len() as f64 / 10.0,
            quantile(&lat, 0.99)
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let all = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match report(&a, &all, &resources) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak: cannot write the report: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

type Resource = (f64, u64, usize, f64, f64);

fn report(a: &Args, all: &[Sample], resources: &[Resource]) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let out = std::path::Path::new(&a.out);
    let mut csv = String::from("t_s,rss_kib,fds,requests_per_s,p99_ms\n");
    for (t, rss, fds, rps, p99) in resources {
        let _ = writeln!(csv, "{t:.0},{rss},{fds},{rps:.1},{p99:.3}");
    }
    std::fs::write(out.join("samples.csv"), csv)?;

    let proxied: Vec<_> = all.iter().filter(|s| !s.direct).collect();
    let count = |f: &dyn Fn(&Sample) -> bool| proxied.iter().filter(|s| f(s)).count();
    let total = proxied.len();
    let ok = count(&|s| s.outcome == Outcome::Ok);
    let failed = count(&|s| s.outcome == Outcome::Failed);
    let cut = count(&|s| s.outcome == Outcome::Cut);
    let streams = count(&|s| s.stream);
    let answered = total - cut;
    let success = 100.0 * ok as f64 / answered.max(1) as f64;

    let mut windows = String::from(
        "window,from_s,requests,failed,cut,proxy_p50_ms,proxy_p99_ms,direct_p50_ms,direct_p99_ms,added_p50_ms,added_p99_ms\n",
    );
    let mut table = String::from(
        "| window | requests | failed | cut mid-stream | added p50 (ms) | added p99 (ms) | through the proxy p50 / p99 (ms) | direct p50 / p99 (ms) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let w = a.window.as_secs_f64();
    let n = (a.duration.as_secs_f64() / w).ceil() as usize;
    for i in 0..n.max(1) {
        let (lo, hi) = (i as f64 * w, (i + 1) as f64 * w);
        let inside = |s: &&Sample| s.at >= lo && s.at < hi;
        let plain = |direct: bool| {
            let mut v: Vec<u64> = all
                .iter()
                .filter(inside)
                .filter(|s| s.direct == direct && !s.stream && s.outcome == Outcome::Ok)
                .map(|s| s.latency_us)
                .collect();
            v.sort_unstable();
            v
        };
        let (p, d) = (plain(false), plain(true));
        let reqs = proxied.iter().filter(|s| inside(s)).count();
        let bad = proxied
            .iter()
            .filter(|s| inside(s) && s.outcome == Outcome::Failed)
            .count();
        let cuts = proxied
            .iter()
            .filter(|s| inside(s) && s.outcome == Outcome::Cut)
            .count();
        let (pp50, pp99, dp50, dp99) = (
            quantile(&p, 0.5),
            quantile(&p, 0.99),
            quantile(&d, 0.5),
            quantile(&d, 0.99),
        );
        let _ = writeln!(
            windows,
            "{i},{lo:.0},{reqs},{bad},{cuts},{pp50:.3},{pp99:.3},{dp50:.3},{dp99:.3},{:.3},{:.3}",
            pp50 - dp50,
            pp99 - dp99
        );
        let _ = writeln!(
            table,
            "| {:.1}–{:.1} min | {reqs} | {bad} | {cuts} | {:.3} | {:.3} | {pp50:.3} / {pp99:.3} | {dp50:.3} / {dp99:.3} |",
            lo / 60.0,
            hi / 60.0,
            pp50 - dp50,
            pp99 - dp99
        );
    }
    std::fs::write(out.join("windows.csv"), windows)?;

    let warm: Vec<(f64, f64)> = resources
        .iter()
        .filter(|r| r.0 >= a.warmup.as_secs_f64())
        .map(|r| (r.0 / 3600.0, r.1 as f64 / 1024.0))
        .collect();
    let fd_points: Vec<(f64, f64)> = resources
        .iter()
        .filter(|r| r.0 >= a.warmup.as_secs_f64())
        .map(|r| (r.0 / 3600.0, r.2 as f64))
        .collect();
    let rss = |f: fn(u64, u64) -> u64| resources.iter().map(|r| r.1).reduce(f).unwrap_or(0);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "{} clients (think time {} ms on average) for {:.0} min, {}% streamed ({} chunks, {} ms apart).\n",
        a.clients,
        a.think_ms,
        a.duration.as_secs_f64() / 60.0,
        a.stream_percent,
        a.chunks,
        a.delay_ms
    );
    let _ = writeln!(md, "| measure | value |\n| --- | --- |");
    let _ = writeln!(md, "| requests | {total} ({streams} streamed) |");
    let _ = writeln!(
        md,
        "| client-visible success, streams cut midway set apart | {success:.4} % ({ok} of {answered}; {failed} failed) |"
    );
    let _ = writeln!(
        md,
        "| streams cut midway (error event, counted apart) | {cut} ({:.3} % of streams) |",
        100.0 * cut as f64 / streams.max(1) as f64
    );
    let _ = writeln!(
        md,
        "| overall success (cuts as failures) | {:.4} % |",
        100.0 * ok as f64 / total.max(1) as f64
    );
    let _ = writeln!(
        md,
        "| RSS min / max | {:.1} / {:.1} MiB |",
        rss(u64::min) as f64 / 1024.0,
        rss(u64::max) as f64 / 1024.0
    );
    let _ = writeln!(
        md,
        "| RSS slope after {:.0} min of warm-up | {:+.3} MiB/hour |",
        a.warmup.as_secs_f64() / 60.0,
        slope(&warm)
    );
    let _ = writeln!(
        md,
        "| open descriptors min / max, slope | {} / {}, {:+.2} per hour |",
        resources.iter().map(|r| r.2).min().unwrap_or(0),
        resources.iter().map(|r| r.2).max().unwrap_or(0),
        slope(&fd_points)
    );
    let _ = writeln!(
        md,
        "\nPer window (added = through the proxy − direct, same window):\n"
    );
    md.push_str(&table);
    std::fs::write(out.join("summary.md"), &md)?;
    print!("{md}");
    Ok(())
}
