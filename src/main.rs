use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the pipeline allocates and frees small buffers per record
/// on several threads, where glibc's allocator spent about a quarter of the process's CPU in a
/// profile of `bench/throughput.sh` (`_int_free`, `malloc_consolidate`, `_int_malloc`); see
/// bench/RESULTS.md for the measured effect.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::Parser;

use dispatch_ingest::audit::{self, Start};
use dispatch_ingest::cli::{
    Cli, Command, GenerateCommand, OutputArgs, ReferenceCommand, ReportCommand,
};
use dispatch_ingest::config::Config;
use dispatch_ingest::decode::Codec;
use dispatch_ingest::enrich::Enricher;
use dispatch_ingest::event::Stream;
use dispatch_ingest::generate::{self, Output, SampleOptions};
use dispatch_ingest::report::municipalities::{compute, publish as public, render};
use dispatch_ingest::report::ReportFormat;
use dispatch_ingest::sink::Sink;
use dispatch_ingest::telemetry::{self, Health};
use dispatch_ingest::{pipeline, report};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dispatch-ingest: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(config.telemetry.log_format);
    for notice in &config.notices {
        tracing::warn!("{notice}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dispatch-ingest: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "dispatch-ingest failed");
            eprintln!("dispatch-ingest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig => {
            print!("{}", config.to_masked_toml());
            Ok(())
        }
        Command::Migrate => migrate(&config).await,
        Command::Run => run(config).await,
        Command::Generate { what } => generate_command(&config, what).await,
        Command::Reference {
            what: ReferenceCommand::Check,
        } => reference_check(&config),
        Command::Audit {
            since_first_ingested,
        } => audit(&config, since_first_ingested).await,
        Command::Report { what } => report_command(&config, what).await,
    }
}

/// `generate ...`: the generators.
async fn generate_command(config: &Config, what: GenerateCommand) -> anyhow::Result<()> {
    match what {
        GenerateCommand::Sample {
            incidents,
            seed,
            start,
        } => generate_sample(config, incidents, seed, start).await,
        GenerateCommand::Mmt {
            years,
            seed,
            duplicates,
            shuffle_window,
            late,
            output,
        } => {
            let noise = generate::mmt::Noise {
                duplicates,
                shuffle_window,
                late,
            };
            generate_mmt(config, &years, seed, noise, &output).await
        }
        GenerateCommand::National {
            year,
            scale,
            seed,
            output,
        } => generate_national(config, year, scale, seed, &output).await,
    }
}

/// `report ...`: reports read from ClickHouse.
async fn report_command(config: &Config, what: ReportCommand) -> anyhow::Result<()> {
    match what {
        ReportCommand::Factsheet { year, format, out } => {
            let sink = Sink::connect(&config.clickhouse).await?;
            let text = report::factsheet::render(&sink, year, format).await?;
            write_out(out.as_deref(), &text)
        }
        ReportCommand::Municipalities {
            year,
            format,
            region,
            quarter,
            summary,
            publish,
            out,
        } => {
            if publish {
                publish_municipalities(config, year, region.as_deref()).await
            } else {
                let view = View {
                    format,
                    region: region.as_deref(),
                    quarter,
                    summary,
                };
                let text = municipalities(config, year, view).await?;
                write_out(out.as_deref(), &text)
            }
        }
        ReportCommand::Landed => {
            let sink = Sink::connect(&config.clickhouse).await?;
            print!(
                "{}",
                report::text_table(&sink, report::queries::LANDED_BY_STREAM).await?
            );
            Ok(())
        }
    }
}

/// `migrate`: apply the pending ClickHouse migrations.
async fn migrate(config: &Config) -> anyhow::Result<()> {
    let sink = Sink::connect(&config.clickhouse).await?;
    let applied = sink.migrate(&config.retry).await?;
    if applied.is_empty() {
        println!("database {}: up to date, nothing to apply", sink.database());
    } else {
        println!(
            "database {}: applied {}",
            sink.database(),
            applied.join(", ")
        );
    }
    Ok(())
}

/// `run`: the pipeline, with `/metrics` and `/health` served until it stops.
async fn run(config: Config) -> anyhow::Result<()> {
    let handle = telemetry::install_recorder()?;
    let health = Health::default();
    let addr = config
        .telemetry
        .listen
        .parse()
        .context("telemetry.listen")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http_stop = stop_rx.clone();
    telemetry::serve(addr, handle, health.clone(), async move {
        let _ = http_stop.changed().await;
    })
    .await?;
    let summary = pipeline::run(config, shutdown_signal(), health).await;
    let _ = stop_tx.send(true);
    let summary = summary?;
    println!(
        "consumed {} inserted {} dead-lettered {}",
        summary.consumed, summary.inserted, summary.dead_lettered
    );
    Ok(())
}

/// `generate sample`: sample incidents produced to Kafka.
async fn generate_sample(
    config: &Config,
    incidents: u32,
    seed: u64,
    start: Option<String>,
) -> anyhow::Result<()> {
    let start_ms = match start {
        Some(s) => parse_rfc3339_ms(&s).with_context(|| format!("--start {s:?}"))?,
        None => dispatch_ingest::clock::now_ms() - 24 * 3600 * 1000,
    };
    let events = generate::sample_events(&SampleOptions {
        incidents,
        seed,
        start_ms,
        spacing_ms: 30_000,
    });
    let codec = Codec::from_config(&config.topics)?;
    let ids = generate::register_schemas(config).await?;
    let n = generate::produce(config, &codec, &ids, &events, |_| {}).await?;
    println!("produced {n} events for {incidents} incidents (seed {seed})");
    Ok(())
}

/// `generate mmt`: the MMT factsheet years, with optional noise.
async fn generate_mmt(
    config: &Config,
    years: &[i32],
    seed: u64,
    noise: generate::mmt::Noise,
    output: &OutputArgs,
) -> anyhow::Result<()> {
    let reference = Enricher::from_config(&config.enrich)?.reference;
    let mut events = Vec::new();
    for year in years {
        let spec = generate::mmt::factsheet_year(*year).with_context(|| {
            format!("--year {year}: the factsheet has figures for 2023 and 2024")
        })?;
        events.extend(generate::mmt::mmt_year(&spec, seed, &reference));
    }
    let events = generate::within_dates(events, output.from, output.to);
    let unique = events.len();
    let events = generate::mmt::with_noise(events, noise, seed);
    let mut out = open_output(config, output).await?;
    let bar = progress_bar(events.len() as u64);
    let n = out
        .send(&events, |k| {
            if k % 1000 == 0 {
                bar.set_position(k);
            }
        })
        .await?;
    bar.finish_and_clear();
    out.finish(&events).await?;
    println!(
        "produced {n} messages: {unique} distinct events of MMT years {years:?} (seed {seed})"
    );
    Ok(())
}

/// `generate national`: a national year of deployments, sent a day at a time.
async fn generate_national(
    config: &Config,
    year: i32,
    scale: f64,
    seed: u64,
    output: &OutputArgs,
) -> anyhow::Result<()> {
    use generate::national;
    let Some(figures) = national::national_year(year) else {
        anyhow::bail!("--year {year}: figures exist for 2023-2026 (2024 calibrated)");
    };
    if !(scale > 0.0 && scale <= 1.0) {
        anyhow::bail!("--scale {scale}: must be in (0, 1]");
    }
    let reference = Enricher::from_config(&config.enrich)?.reference;
    let spec = national::scaled(&figures, scale);
    let plan = national::Plan::new(spec, seed, &reference);
    let mut out = open_output(config, output).await?;
    let bar = progress_bar(plan.days() as u64);
    let mut n = 0;
    let mut deployments = 0;
    let mut last_day = Vec::new();
    for d in 0..plan.days() {
        let events = generate::within_dates(plan.day(d), output.from, output.to);
        if events.is_empty() {
            continue;
        }
        deployments += events.iter().filter(|e| e.stream() == Stream::Call).count();
        n += out.send(&events, |_| {}).await?;
        bar.set_position(d as u64 + 1);
        last_day = events;
    }
    bar.finish_and_clear();
    out.finish(&last_day).await?;
    println!(
        "produced {n} messages: {deployments} deployments of {year} at scale {scale} (seed {seed})"
    );
    Ok(())
}

/// The generators' output chosen by `--out-dir` and `--malformed`.
async fn open_output(config: &Config, args: &OutputArgs) -> anyhow::Result<Output> {
    Output::open(config, args.out_dir.as_deref(), args.malformed, args.rate).await
}

/// `reference check`: validate the reference tables.
fn reference_check(config: &Config) -> anyhow::Result<()> {
    let enricher = Enricher::from_config(&config.enrich)?;
    let problems = enricher.reference.check();
    println!(
        "{}: {}",
        config.enrich.reference_dir,
        enricher.reference.summary()
    );
    for p in &problems {
        println!("problem: {p}");
    }
    if !problems.is_empty() {
        anyhow::bail!("{} problem(s) in the reference tables", problems.len());
    }
    println!("reference tables OK");
    Ok(())
}

/// `audit`: is every committed record in ClickHouse or on the DLQ?
async fn audit(config: &Config, since_first_ingested: bool) -> anyhow::Result<()> {
    let sink = Sink::connect(&config.clickhouse).await?;
    let start = if since_first_ingested {
        Start::FirstAccounted
    } else {
        Start::LowWatermark
    };
    let rows = audit::audit(config, &sink, start).await?;
    print!("{}", audit::render(&rows));
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| r.missing() != 0)
        .map(|r| format!("{}/{}: {}", r.topic, r.partition, r.missing()))
        .collect();
    if !bad.is_empty() {
        anyhow::bail!("records unaccounted for in {}", bad.join(", "));
    }
    Ok(())
}

/// What part of the municipality report to render, and how.
struct View<'a> {
    format: ReportFormat,
    region: Option<&'a str>,
    quarter: Option<u8>,
    summary: bool,
}

/// The reference tables, after checking that `--region` (if given) names a safety region.
fn reference_for_region(
    config: &Config,
    region: Option<&str>,
) -> anyhow::Result<dispatch_ingest::enrich::reference::Reference> {
    let reference = Enricher::from_config(&config.enrich)?.reference;
    if let Some(r) = region {
        if !reference.regions.contains_key(r) {
            anyhow::bail!("--region {r}: not a safety region (VR01-VR25)");
        }
    }
    Ok(reference)
}

/// `report municipalities --publish`: the suppressed cells to the public database.
async fn publish_municipalities(
    config: &Config,
    year: i32,
    region: Option<&str>,
) -> anyhow::Result<()> {
    let reference = reference_for_region(config, region)?;
    let sink = Sink::connect(&config.clickhouse).await?;
    let rep = compute::build(&sink, &reference, &config.report, year).await?;
    let (cells, suppressed) = public::publish(
        &sink,
        &config.report.public_database,
        &rep,
        &config.report.counting_unit_types,
    )
    .await?;
    println!(
        "published {cells} cells of {year} ({suppressed} suppressed) to {}.{}",
        config.report.public_database,
        public::CELLS_TABLE
    );
    Ok(())
}

/// `report municipalities`: the report as text in the chosen format.
async fn municipalities(config: &Config, year: i32, view: View<'_>) -> anyhow::Result<String> {
    let reference = reference_for_region(config, view.region)?;
    let sink = Sink::connect(&config.clickhouse).await?;
    let rep = compute::build(&sink, &reference, &config.report, year).await?;
    let rep = render::restrict(rep, view.region, view.quarter);
    Ok(match (view.format, view.summary) {
        (_, true) => render::region_summary(&rep),
        (ReportFormat::Md, _) => render::to_markdown(&rep),
        (ReportFormat::Csv, _) => render::to_csv(&rep),
        (ReportFormat::Json, _) => render::to_json(&rep),
        (ReportFormat::Html, _) => {
            let topology =
                report::map::Topology::load(std::path::Path::new(&config.enrich.reference_dir))?;
            report::municipalities::html::render(&rep, &topology)?
        }
    })
}

/// Write a report to `--out`, or to stdout without one.
fn write_out(out: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// A progress bar on a terminal; hidden otherwise.
fn progress_bar(len: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {wide_bar} {pos}/{len} messages {per_sec} eta {eta}",
        )
        .expect("template"),
    );
    bar
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
}

/// Parse an RFC 3339 timestamp or a date (`YYYY-MM-DD`, midnight UTC) as UTC milliseconds.
fn parse_rfc3339_ms(s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| anyhow::anyhow!("expected RFC 3339 or YYYY-MM-DD: {e}"))?;
    Ok(d.and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_millis())
}
