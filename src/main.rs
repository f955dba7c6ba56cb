use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use dispatch_ingest::cli::{Cli, Command, GenerateCommand, ReferenceCommand, ReportCommand};
use dispatch_ingest::config::Config;
use dispatch_ingest::decode::Codec;
use dispatch_ingest::enrich::Enricher;
use dispatch_ingest::generate::{self, SampleOptions};
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
        Command::Migrate => {
            let sink = Sink::connect(&config.clickhouse).await?;
            let applied = sink.migrate().await?;
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
        Command::Run => {
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
        Command::Generate {
            what:
                GenerateCommand::Sample {
                    incidents,
                    seed,
                    start,
                },
        } => {
            let start_ms = match start {
                Some(s) => parse_rfc3339_ms(&s).with_context(|| format!("--start {s:?}"))?,
                None => pipeline::now_ms() - 24 * 3600 * 1000,
            };
            let events = generate::sample_events(&SampleOptions {
                incidents,
                seed,
                start_ms,
                spacing_ms: 30_000,
            });
            let codec = Codec::from_config(&config.topics)?;
            let ids = generate::register_schemas(&config).await?;
            let n = generate::produce(&config, &codec, &ids, &events, |_| {}).await?;
            println!("produced {n} events for {incidents} incidents (seed {seed})");
            Ok(())
        }
        Command::Reference {
            what: ReferenceCommand::Check,
        } => {
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
        Command::Audit {
            since_first_ingested,
        } => {
            use dispatch_ingest::audit::Start;
            let sink = Sink::connect(&config.clickhouse).await?;
            let start = if since_first_ingested {
                Start::FirstAccounted
            } else {
                Start::LowWatermark
            };
            let rows = dispatch_ingest::audit::audit(&config, &sink, start).await?;
            print!("{}", dispatch_ingest::audit::render(&rows));
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
        Command::Generate {
            what:
                GenerateCommand::Mmt {
                    years,
                    seed,
                    duplicates,
                    shuffle_window,
                    late,
                    output,
                },
        } => {
            let reference = Enricher::from_config(&config.enrich)?.reference;
            let mut events = Vec::new();
            for year in &years {
                let spec = generate::mmt::factsheet_year(*year).with_context(|| {
                    format!("--year {year}: the factsheet has figures for 2023 and 2024")
                })?;
                events.extend(generate::mmt::mmt_year(&spec, seed, &reference));
            }
            let events = generate::within_dates(events, output.from, output.to);
            let unique = events.len();
            let events = generate::mmt::with_noise(
                events,
                generate::mmt::Noise {
                    duplicates,
                    shuffle_window,
                    late,
                },
                seed,
            );
            let mut out = Output::open(&config, &output).await?;
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
        Command::Generate {
            what:
                GenerateCommand::National {
                    year,
                    scale,
                    seed,
                    output,
                },
        } => {
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
            let mut out = Output::open(&config, &output).await?;
            let bar = progress_bar(plan.days() as u64);
            let mut n = 0;
            let mut deployments = 0;
            let mut last_day = Vec::new();
            for d in 0..plan.days() {
                let events = generate::within_dates(plan.day(d), output.from, output.to);
                if events.is_empty() {
                    continue;
                }
                deployments += events
                    .iter()
                    .filter(|e| e.stream() == dispatch_ingest::event::Stream::Call)
                    .count();
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
        Command::Report {
            what: ReportCommand::Factsheet { year, format, out },
        } => {
            let sink = Sink::connect(&config.clickhouse).await?;
            let text = report::factsheet::render(&sink, year, format).await?;
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(())
        }
        Command::Report {
            what:
                ReportCommand::Municipalities {
                    year,
                    format,
                    region,
                    quarter,
                    summary,
                    publish,
                    out,
                },
        } => {
            use dispatch_ingest::report::ReportFormat;
            use report::municipalities::{compute, publish as public, render};
            let reference = Enricher::from_config(&config.enrich)?.reference;
            if let Some(r) = &region {
                if !reference.regions.contains_key(r) {
                    anyhow::bail!("--region {r}: not a safety region (VR01-VR25)");
                }
            }
            let sink = Sink::connect(&config.clickhouse).await?;
            let rep = compute::build(&sink, &reference, &config.report, year).await?;
            if publish {
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
                return Ok(());
            }
            let rep = render::restrict(rep, region.as_deref(), quarter);
            let text = match (format, summary) {
                (_, true) => render::region_summary(&rep),
                (ReportFormat::Md, _) => render::to_markdown(&rep),
                (ReportFormat::Csv, _) => render::to_csv(&rep),
                (ReportFormat::Json, _) => render::to_json(&rep),
                (ReportFormat::Html, _) => {
                    let topology = dispatch_ingest::report::map::Topology::load(
                        std::path::Path::new(&config.enrich.reference_dir),
                    )?;
                    report::municipalities::html::render(&rep, &topology)?
                }
            };
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(())
        }
        Command::Report {
            what: ReportCommand::Landed,
        } => {
            let sink = Sink::connect(&config.clickhouse).await?;
            print!("{}", report::text_table(&sink, "landed_by_stream").await?);
            Ok(())
        }
    }
}

/// Kafka or files, for the generators.
enum Output {
    Kafka {
        producer: rdkafka::producer::FutureProducer,
        codec: Codec,
        ids: std::collections::HashMap<dispatch_ingest::event::Stream, u32>,
        config: Box<Config>,
        malformed: f64,
        sent: u64,
    },
    Files(generate::FileOutput, std::path::PathBuf),
}

impl Output {
    async fn open(
        config: &Config,
        args: &dispatch_ingest::cli::OutputArgs,
    ) -> anyhow::Result<Output> {
        if !(0.0..=1.0).contains(&args.malformed) {
            anyhow::bail!(
                "--malformed {}: must be a fraction in [0, 1]",
                args.malformed
            );
        }
        Ok(match &args.out_dir {
            Some(dir) => {
                if args.malformed > 0.0 {
                    anyhow::bail!("--malformed applies to Kafka output only");
                }
                Output::Files(
                    generate::FileOutput::create(config, dir)
                        .with_context(|| format!("--out-dir {}", dir.display()))?,
                    dir.clone(),
                )
            }
            None => Output::Kafka {
                producer: generate::producer(config)?,
                codec: Codec::from_config(&config.topics)?,
                ids: generate::register_schemas(config).await?,
                config: Box::new(config.clone()),
                malformed: args.malformed,
                sent: 0,
            },
        })
    }

    async fn send(
        &mut self,
        events: &[dispatch_ingest::event::DispatchEvent],
        progress: impl FnMut(u64),
    ) -> anyhow::Result<u64> {
        Ok(match self {
            Output::Kafka {
                producer,
                codec,
                ids,
                config,
                sent,
                ..
            } => {
                let n =
                    generate::produce_with(producer, config, codec, ids, events, progress).await?;
                *sent += n;
                n
            }
            Output::Files(files, dir) => files
                .write(events)
                .with_context(|| format!("writing to {}", dir.display()))?,
        })
    }

    /// Flush; for Kafka with --malformed, send the malformed records (copies of `sample`'s calls).
    async fn finish(self, sample: &[dispatch_ingest::event::DispatchEvent]) -> anyhow::Result<()> {
        match self {
            Output::Kafka {
                producer,
                codec,
                config,
                malformed,
                sent,
                ..
            } => {
                let n = (sent as f64 * malformed).round() as usize;
                if n > 0 {
                    let m =
                        generate::produce_malformed(&producer, &config, &codec, sample, n).await?;
                    println!("sent {m} malformed records to {}", config.topics.call.name);
                }
            }
            Output::Files(files, dir) => {
                files
                    .finish()
                    .with_context(|| format!("writing to {}", dir.display()))?;
                println!("wrote files to {}", dir.display());
            }
        }
        Ok(())
    }
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
