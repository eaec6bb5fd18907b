//! What the middleware costs, side by side with bare reqwest and with reqwest-tracing +
//! reqwest-retry. See BENCHMARKS.md.
//!
//! ```sh
//! cargo bench --bench overhead                      # the full run (about two minutes)
//! cargo bench --bench overhead -- --quick           # shorter phases, fewer rounds
//! cargo bench --bench overhead -- --collector dead  # spans and metrics sent to a collector that never answers
//! cargo bench --bench overhead -- --collector drop  # exporters that drop what they receive
//! cargo bench --bench overhead -- --rounds 10 --phase-ms 800
//! ```
//!
//! The gateway stand-in and the OTLP sink run in a child process (this binary with
//! `--serve`), so that the allocation counts are the client's and its exporter's only. Every
//! number that matters is a ratio against bare reqwest measured in the same run: the three
//! variants run in turns (rounds, the order rotated each round), and a variant's phase ends
//! only once the spans it produced have been exported, so the exporter's work is counted in
//! the phase that caused it.

mod workload;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use workload::{Kind, Telemetry, Variant, Workload, KINDS, WORKLOADS};

/// Counts allocations while `COUNTING` is on (a relaxed load otherwise, so that the timed
/// phases pay next to nothing for it).
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

fn count(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A growth is counted as an allocation of the new size (what a copy would cost).
        count(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

struct Options {
    rounds: usize,
    phase: Duration,
    concurrencies: Vec<usize>,
    workloads: Vec<Workload>,
    /// Only run this many calls of one variant (for a profiler), and report nothing.
    profile: Option<(Kind, usize)>,
    /// Export to a collector that accepts connections and never answers.
    dead_collector: bool,
    /// Exporters that drop what they receive (no OTLP encoding, nothing sent).
    dropping_exporters: bool,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            rounds: 6,
            phase: Duration::from_millis(500),
            concurrencies: vec![1, 64],
            workloads: WORKLOADS.to_vec(),
            profile: None,
            dead_collector: false,
            dropping_exporters: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            fn number(args: &mut impl Iterator<Item = String>, name: &str) -> u64 {
                args.next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{name} needs a number"))
            }
            let mut value = |name: &str| number(&mut args, name);
            match arg.as_str() {
                "--quick" => {
                    o.rounds = 3;
                    o.phase = Duration::from_millis(250);
                }
                "--collector" => {
                    let how = args.next().unwrap_or_default();
                    assert!(
                        how == "dead" || how == "live" || how == "drop",
                        "--collector dead|live|drop"
                    );
                    o.dead_collector = how == "dead";
                    o.dropping_exporters = how == "drop";
                }
                "--rounds" => o.rounds = value("--rounds") as usize,
                "--phase-ms" => o.phase = Duration::from_millis(value("--phase-ms")),
                "--concurrency" => o.concurrencies = vec![value("--concurrency") as usize],
                "--workload" => {
                    let name = args.next().unwrap_or_default();
                    o.workloads = WORKLOADS.into_iter().filter(|w| w.name() == name).collect();
                    assert!(!o.workloads.is_empty(), "no workload {name:?}");
                }
                "--profile" => {
                    let name = args.next().unwrap_or_default();
                    let kind = match name.as_str() {
                        "bare" => Kind::Bare,
                        "tracing" => Kind::TracingRetry,
                        "gateway" => Kind::Gateway,
                        "gateway-tracing" => Kind::GatewayTracingOnly,
                        _ => panic!("--profile bare|tracing|gateway|gateway-tracing CALLS"),
                    };
                    o.profile = Some((kind, number(&mut args, "--profile") as usize));
                }
                // `cargo bench` passes `--bench`; filters are not supported.
                _ => {}
            }
        }
        o
    }
}

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        return serve();
    }
    let options = Options::parse();
    let mut child = ServerProcess(
        Command::new(std::env::current_exe().expect("own path"))
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("server process"),
    );
    let mut to_child = child.0.stdin.take().expect("stdin");
    let mut from_child = BufReader::new(child.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    from_child.read_line(&mut line).expect("server addresses");
    let mut addrs = line.split_whitespace().map(|a| a.parse::<SocketAddr>());
    let (Some(Ok(server)), Some(Ok(sink))) = (addrs.next(), addrs.next()) else {
        panic!("server process said {line:?}");
    };
    // (spans, bytes of trace exports) the sink has received so far.
    let mut sink_stats = || -> (u64, u64) {
        writeln!(to_child, "stats").expect("ask the server");
        let mut line = String::new();
        from_child.read_line(&mut line).expect("sink stats");
        let mut numbers = line.split_whitespace().map(|n| n.parse().expect("a count"));
        (
            numbers.next().expect("spans"),
            numbers.next().expect("trace bytes"),
        )
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let telemetry = {
        let _in_runtime = rt.enter();
        if options.dead_collector {
            // Accepts every connection and never answers: exports hang until they time out.
            let hole = std::net::TcpListener::bind("127.0.0.1:0").expect("black hole");
            let addr = hole.local_addr().expect("black hole address");
            hole.set_nonblocking(true).expect("non-blocking");
            let hole = tokio::net::TcpListener::from_std(hole).expect("black hole listener");
            rt.spawn(async move {
                let mut held = Vec::new();
                while let Ok((socket, _)) = hole.accept().await {
                    held.push(socket);
                }
            });
            println!("exporting to a black-hole collector at {addr}\n");
            Telemetry::to(addr, false)
        } else if options.dropping_exporters {
            println!("exporters that drop what they receive\n");
            Telemetry::dropping()
        } else {
            Telemetry::to_sink(sink)
        }
    };
    tracing::dispatcher::set_global_default(telemetry.dispatch.clone()).expect("subscriber");
    let variants: Vec<Arc<Variant>> = KINDS
        .iter()
        .map(|&k| Arc::new(Variant::new(k, server, &telemetry)))
        .collect();

    if let Some((kind, calls)) = options.profile {
        let k = KINDS.iter().position(|&x| x == kind).unwrap_or(0);
        for &workload in &options.workloads {
            for &concurrency in &options.concurrencies {
                let bench = Bench {
                    rt: &rt,
                    telemetry: &telemetry,
                    server,
                    workload,
                    concurrency,
                };
                let phase = bench.phase(&variants[k], calls, None);
                let nanos = |d: Duration| d.as_nanos() as u64;
                let mut heads: Vec<u64> = phase.timings.iter().map(|t| nanos(t.head)).collect();
                let mut firsts: Vec<u64> = phase
                    .timings
                    .iter()
                    .filter_map(|t| t.first_chunk.map(nanos))
                    .collect();
                println!(
                    "response head p50 {:.0} µs, first chunk p50 {:.0} µs",
                    percentile_us(&mut heads, 0.5),
                    percentile_us(&mut firsts, 0.5)
                );
                println!(
                    "{} {} c={concurrency}: {} calls in {:?}",
                    kind.name(),
                    workload.name(),
                    phase.timings.len(),
                    phase.elapsed
                );
            }
        }
        return;
    }
    println!("# llm-gateway-otel overhead benchmark\n");
    println!("{}", machine());
    println!(
        "rounds: {}, phase: {} ms per variant per round, order rotated each round\n",
        options.rounds,
        options.phase.as_millis()
    );
    let mut expected_spans = 0u64;
    let mut alloc_rows = Vec::new();
    let mut headline = Vec::new();
    let started = Instant::now();
    for &workload in &options.workloads {
        for &concurrency in &options.concurrencies {
            let bench = Bench {
                rt: &rt,
                telemetry: &telemetry,
                server,
                workload,
                concurrency,
            };
            // Warm-up: connections open, caches and instruments warm.
            for v in &variants {
                let calls = (concurrency * 20).max(200);
                bench.phase(v, calls, None);
                expected_spans += v.kind().spans_per_call() * calls as u64;
            }
            let mut results: Vec<Results> = KINDS.iter().map(|_| Results::default()).collect();
            for round in 0..options.rounds {
                for i in 0..KINDS.len() {
                    let k = (i + round) % KINDS.len();
                    let phase = bench.phase(&variants[k], 0, Some(options.phase));
                    expected_spans += KINDS[k].spans_per_call() * phase.timings.len() as u64;
                    results[k].add(round, phase);
                }
            }
            let allocs: Vec<(f64, f64)> = variants
                .iter()
                .map(|v| {
                    let calls = if concurrency == 1 {
                        400
                    } else {
                        concurrency * 8
                    };
                    expected_spans += 3 * v.kind().spans_per_call() * calls as u64;
                    bench.allocations(v, calls)
                })
                .collect();
            // What each variant exports per call: spans and OTLP trace bytes, from the sink's
            // counts around a pass of its own (each phase ends with a flush).
            let mut export = Vec::new();
            for v in &variants {
                let calls = concurrency * 16;
                let (spans0, bytes0) = sink_stats();
                bench.phase(v, calls, None);
                let (spans1, bytes1) = sink_stats();
                expected_spans += v.kind().spans_per_call() * calls as u64;
                let n = calls as f64;
                export.push((
                    v.kind().name(),
                    (spans1 - spans0) as f64 / n,
                    (bytes1 - bytes0) as f64 / n,
                ));
            }
            let (received, _) = sink_stats();
            let table = report(workload, concurrency, &results, &allocs);
            println!("{table}");
            println!(
                "| variant | spans exported per call | OTLP trace bytes per call |\n|---|---|---|"
            );
            for (name, spans, bytes) in &export {
                println!("| {name} | {spans:.2} | {bytes:.0} |");
            }
            println!(
                "\nspans exported so far: {received} received by the sink of {expected_spans} produced\n"
            );
            alloc_rows.push((workload, concurrency, allocs));
            headline.push((workload, concurrency, results));
        }
    }
    println!("{}", allocation_summary(&alloc_rows));
    println!("{}", headline_summary(&headline));
    println!(
        "finished in {:.0} s; load average at the end: {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    drop(to_child); // the server process exits when its stdin closes
    drop(child);
}

/// The server process; waited for (after its stdin closed), or killed if the run panicked.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// One workload at one concurrency.
struct Bench<'a> {
    rt: &'a tokio::runtime::Runtime,
    telemetry: &'a Telemetry,
    server: SocketAddr,
    workload: Workload,
    concurrency: usize,
}

struct Phase {
    timings: Vec<workload::CallTiming>,
    elapsed: Duration,
    /// CPU time of this process (every thread: the clients, the runtime, the exporters)
    /// during the phase.
    cpu: Duration,
}

/// CPU time used so far by the live threads of this process, from
/// `/proc/self/task/*/schedstat` (nanoseconds; zero where it cannot be read). The threads
/// that matter (runtime workers, the batch span processor, the export runtime) live for
/// the whole run, so differences between two readings are what the phase cost.
fn process_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

impl Bench<'_> {
    /// Runs `calls` calls (or, with `duration`, as many as fit), then waits until the spans
    /// they produced have been exported; the time includes that wait.
    fn phase(&self, variant: &Arc<Variant>, calls: usize, duration: Option<Duration>) -> Phase {
        let cpu_before = process_cpu();
        let started = Instant::now();
        let deadline = duration.map(|d| started + d);
        let timings = self
            .rt
            .block_on(workload::run(
                Arc::clone(variant),
                self.server,
                self.workload,
                self.concurrency,
                calls,
                deadline,
                None,
            ))
            .unwrap_or_else(|e| panic!("{} failed: {e}", variant.kind().name()));
        if variant.kind() != Kind::Bare {
            self.telemetry.flush();
        }
        Phase {
            timings,
            elapsed: started.elapsed(),
            cpu: process_cpu().saturating_sub(cpu_before),
        }
    }

    /// Bytes and allocations per call over `calls` calls, export included: the smallest of
    /// three passes (hyper sizes its read buffer to what each read brings, so the bytes of a
    /// large body vary with timing; the smallest pass is the least disturbed one).
    fn allocations(&self, variant: &Arc<Variant>, calls: usize) -> (f64, f64) {
        let n = calls as f64;
        let mut best = (f64::INFINITY, f64::INFINITY);
        for _ in 0..3 {
            ALLOCATIONS.store(0, Ordering::Relaxed);
            ALLOCATED_BYTES.store(0, Ordering::Relaxed);
            COUNTING.store(true, Ordering::Relaxed);
            self.phase(variant, calls, None);
            COUNTING.store(false, Ordering::Relaxed);
            best.0 = best
                .0
                .min(ALLOCATED_BYTES.load(Ordering::Relaxed) as f64 / n);
            best.1 = best.1.min(ALLOCATIONS.load(Ordering::Relaxed) as f64 / n);
        }
        best
    }
}

/// Every round of one variant.
#[derive(Default)]
struct Results {
    calls: usize,
    elapsed: Duration,
    cpu: Duration,
    per_round: Vec<f64>,
    totals: Vec<u64>,
    first_chunks: Vec<u64>,
    /// p50 time to first chunk of each round, µs.
    first_chunk_per_round: Vec<f64>,
}

impl Results {
    fn add(&mut self, _round: usize, phase: Phase) {
        self.calls += phase.timings.len();
        self.elapsed += phase.elapsed;
        self.cpu += phase.cpu;
        self.per_round
            .push(phase.timings.len() as f64 / phase.elapsed.as_secs_f64());
        let mut round_first: Vec<u64> = Vec::new();
        for t in &phase.timings {
            self.totals.push(t.total.as_nanos() as u64);
            if let Some(f) = t.first_chunk {
                self.first_chunks.push(f.as_nanos() as u64);
                round_first.push(f.as_nanos() as u64);
            }
        }
        if !round_first.is_empty() {
            self.first_chunk_per_round
                .push(percentile_us(&mut round_first, 0.5));
        }
    }

    /// Per round difference of the p50 time to first chunk to `base`'s, µs: (min, max).
    fn first_chunk_added_range(&self, base: &Results) -> (f64, f64) {
        let d: Vec<f64> = self
            .first_chunk_per_round
            .iter()
            .zip(&base.first_chunk_per_round)
            .map(|(a, b)| a - b)
            .collect();
        (
            d.iter().copied().fold(f64::INFINITY, f64::min),
            d.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    }

    /// CPU µs of this process per call (clients and exporters; not the server or the sink).
    fn cpu_per_call_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.calls.max(1) as f64
    }

    fn throughput(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    /// Per round ratio to `base`: (median, min, max).
    fn ratio(&self, base: &Results) -> (f64, f64, f64) {
        let mut r: Vec<f64> = self
            .per_round
            .iter()
            .zip(&base.per_round)
            .map(|(a, b)| a / b)
            .collect();
        r.sort_by(f64::total_cmp);
        (r[r.len() / 2], r[0], r[r.len() - 1])
    }
}

fn percentile_us(values: &mut [u64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_unstable();
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[i] as f64 / 1000.0
}

fn report(
    workload: Workload,
    concurrency: usize,
    results: &[Results],
    allocs: &[(f64, f64)],
) -> String {
    let mut out = format!(
        "## {} at concurrency {}\n\n| variant | calls/s | ratio to bare (median, range over rounds) | p50 µs | p99 µs | p50 added vs bare µs |{} client CPU µs/call | CPU added vs bare µs/call | bytes alloc/call | allocs/call |\n|---|---|---|---|---|---|{}---|---|---|---|\n",
        workload.name(),
        concurrency,
        if workload.streamed() { " first chunk p50 µs | first chunk added µs (range of per-round p50 differences) |" } else { "" },
        if workload.streamed() { "---|---|" } else { "" },
    );
    let base = &results[0];
    let mut base_totals = base.totals.clone();
    let base_p50 = percentile_us(&mut base_totals, 0.5);
    let mut base_first = base.first_chunks.clone();
    let base_ttfc = percentile_us(&mut base_first, 0.5);
    for (i, kind) in KINDS.iter().enumerate() {
        let r = &results[i];
        let (median, lo, hi) = r.ratio(base);
        let mut totals = r.totals.clone();
        let p50 = percentile_us(&mut totals, 0.5);
        let p99 = percentile_us(&mut totals, 0.99);
        let ttfc = if workload.streamed() {
            let mut f = r.first_chunks.clone();
            let t = percentile_us(&mut f, 0.5);
            let (lo, hi) = r.first_chunk_added_range(base);
            format!(" {t:.0} | {:+.0} ({lo:+.0}…{hi:+.0}) |", t - base_ttfc)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| {} | {:.0} | {:.3} ({:.3}–{:.3}) | {:.0} | {:.0} | {:+.0} |{} {:.1} | {:+.1} | {:.0} | {:.1} |\n",
            kind.name(),
            r.throughput(),
            median,
            lo,
            hi,
            p50,
            p99,
            p50 - base_p50,
            ttfc,
            r.cpu_per_call_us(),
            r.cpu_per_call_us() - base.cpu_per_call_us(),
            allocs[i].0,
            allocs[i].1,
        ));
    }
    out
}

/// Does allocation grow with the body size beyond what bare reqwest does?
/// Bytes and allocations per call of each variant, for one workload at one concurrency.
type AllocationRow = (Workload, usize, Vec<(f64, f64)>);

fn allocation_summary(rows: &[AllocationRow]) -> String {
    let mut out = String::from(
        "## Allocation per call against body size (256 KiB minus 1 KiB, per call)\n\n| concurrency | variant | bytes/call 1 KiB | bytes/call 256 KiB | growth | growth beyond bare's |\n|---|---|---|---|---|---|\n",
    );
    let find = |w: Workload, c: usize| rows.iter().find(|r| r.0 == w && r.1 == c);
    for c in rows
        .iter()
        .map(|r| r.1)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (Some(small), Some(large)) = (find(Workload::Json1K, c), find(Workload::Json256K, c))
        else {
            continue;
        };
        let bare_growth = large.2[0].0 - small.2[0].0;
        for (i, kind) in KINDS.iter().enumerate() {
            let growth = large.2[i].0 - small.2[i].0;
            out.push_str(&format!(
                "| {c} | {} | {:.0} | {:.0} | {:+.0} | {:+.0} |\n",
                kind.name(),
                small.2[i].0,
                large.2[i].0,
                growth,
                growth - bare_growth
            ));
        }
    }
    out
}

fn headline_summary(rows: &[(Workload, usize, Vec<Results>)]) -> String {
    let mut out = String::from(
        "## Headline: llm-gateway-otel throughput ratios (aggregate over rounds)\n\n| workload | concurrency | vs bare | vs reqwest-tracing + retry |\n|---|---|---|---|\n",
    );
    for (w, c, r) in rows {
        out.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} |\n",
            w.name(),
            c,
            r[2].throughput() / r[0].throughput(),
            r[2].throughput() / r[1].throughput()
        ));
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "machine: {cores} cores, {cpu}; load average at the start: {}\n",
        loadavg()
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The child process: the gateway stand-in and the OTLP sink, until stdin closes. Prints
/// their addresses, then answers each `stats` line with the number of spans received.
fn serve() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stats = Arc::new(workload::SinkStats::default());
    let (server, sink) = rt.block_on(async {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let sink = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addrs = (
            server.local_addr().expect("addr"),
            sink.local_addr().expect("addr"),
        );
        tokio::spawn(workload::serve_gateway(server));
        tokio::spawn(workload::serve_sink(sink, Arc::clone(&stats)));
        addrs
    });
    println!("{server} {sink}");
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(_) = line else { break };
        println!(
            "{} {}",
            stats.spans(),
            stats.trace_bytes.load(std::sync::atomic::Ordering::Relaxed)
        );
        let _ = std::io::stdout().flush();
    }
}
