//! The `dispatch-ingest` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::report::ReportFormat;

/// The `dispatch-ingest` command line: a global `--config` and one subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "dispatch-ingest",
    version,
    about = "Dutch emergency-dispatch events from Kafka into ClickHouse"
)]
pub struct Cli {
    /// Configuration file (TOML); without it the defaults apply. Environment variables
    /// DISPATCH_INGEST__SECTION__KEY override both.
    #[arg(long, short, env = "DISPATCH_INGEST_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `dispatch-ingest`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume the stream topics and write to ClickHouse until SIGTERM/SIGINT.
    Run,
    /// Apply pending ClickHouse migrations (each once; re-running is a no-op).
    Migrate,
    /// Validate the configuration and print it, secrets masked.
    CheckConfig,
    /// Produce synthetic events to Kafka.
    Generate {
        /// Which generator.
        #[command(subcommand)]
        what: GenerateCommand,
    },
    /// Reference tables for enrichment.
    Reference {
        /// Which reference-table action.
        #[command(subcommand)]
        what: ReferenceCommand,
    },
    /// Compare, per topic and partition, what Kafka holds below the committed offset with what
    /// ClickHouse and the dead-letter topic hold. Exits 1 on any difference.
    Audit {
        /// Start each partition at the first offset found in ClickHouse or on the DLQ instead of
        /// Kafka's low watermark (for a group that began at the end of the topics).
        #[arg(long)]
        since_first_ingested: bool,
    },
    /// Print a report from ClickHouse.
    Report {
        /// Which report.
        #[command(subcommand)]
        what: ReportCommand,
    },
}

/// The generators of `dispatch-ingest generate`.
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Sample incidents (call, alerts, arrivals, cancels, transports) in each topic's format.
    Sample {
        /// Number of incidents.
        #[arg(long, default_value_t = 100)]
        incidents: u32,
        /// Seed of the random generator: the same seed gives the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First incident time (RFC 3339, UTC), default: one day ago.
        #[arg(long)]
        start: Option<String>,
    },
    /// MMT calls for whole years, calibrated to the MMT factsheet 2023-2024 (exact counts).
    Mmt {
        /// Year(s) to generate (2023, 2024).
        #[arg(long = "year", required = true)]
        years: Vec<i32>,
        /// Seed of the random generator: the same seed gives the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Fraction of events sent twice.
        #[arg(long, default_value_t = 0.0)]
        duplicates: f64,
        /// Shuffle events within windows of this many (0: time order).
        #[arg(long, default_value_t = 0)]
        shuffle_window: usize,
        /// Fraction of events sent after all others.
        #[arg(long, default_value_t = 0.0)]
        late: f64,
        /// Where the events go.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// A national year of ambulance deployments (2023-2026), calibrated to the Kamerbrief of
    /// September 2025 (2024; other years by an assumed trend): counts per urgency, mobile care
    /// consults, rapid responders, response times by region and rurality, volumes per
    /// municipality by inhabitants.
    National {
        /// Year to generate (2023-2026).
        #[arg(long, default_value_t = 2024)]
        year: i32,
        /// Fraction of the national volume (1.0: about 1.48 million deployments).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Seed of the random generator: the same seed gives the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where the events go.
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Where generated events go, and which part of the generated year.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Only incidents whose 112 call falls on or after this local date (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Only incidents whose 112 call falls on or before this local date (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Write files to this directory (<topic>.jsonl for JSON topics, <topic>.avro Avro container
    /// files otherwise) instead of producing to Kafka.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Fraction of extra malformed records (truncated) sent to the call topic (Kafka only).
    #[arg(long, default_value_t = 0.0)]
    pub malformed: f64,
    /// Produce at most this many messages a second, steadily (Kafka only; default: as fast as
    /// the producer goes). For benchmarks of freshness at a known input rate.
    #[arg(long)]
    pub rate: Option<u32>,
}

/// The actions of `dispatch-ingest reference`.
#[derive(Debug, Subcommand)]
pub enum ReferenceCommand {
    /// Validate the tables in enrich.reference_dir: unique codes, every municipality in one
    /// region at any date, no gaps or overlaps, successor chains ending in a current
    /// municipality, region sizes as stated.
    Check,
}

/// The reports of `dispatch-ingest report`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// What landed in ClickHouse per stream.
    Landed,
    /// The MMT factsheet indicators for a year (with the year before for comparison).
    Factsheet {
        /// Year of the factsheet; the year before is shown beside it.
        #[arg(long)]
        year: i32,
        /// md, html, csv or json.
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A0/A1 response times per municipality, safety region and the country (year and quarters,
    /// suppressed for small counts); `--publish` writes it to the public database for BI tools.
    Municipalities {
        /// Reporting year (by the time the 112 call was accepted, Europe/Amsterdam).
        #[arg(long)]
        year: i32,
        /// md, csv, json, or html (the page with the map and the regional bar charts).
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
        /// Only this safety region (VRxx) and its municipalities (with the national figures).
        #[arg(long)]
        region: Option<String>,
        /// Only this quarter (1-4).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
        quarter: Option<u8>,
        /// Only the national and regional A1 lines (Markdown).
        #[arg(long)]
        summary: bool,
        /// Write the whole year into `report.public_database` instead of printing it.
        #[arg(long)]
        publish: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}
