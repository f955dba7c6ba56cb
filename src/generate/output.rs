//! Where the generators send their events: Kafka (with optional malformed noise) or files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rdkafka::producer::FutureProducer;

use crate::config::Config;
use crate::decode::Codec;
use crate::event::{DispatchEvent, Stream};

use super::{FileOutput, Pacer};

/// Kafka or files, for the generators.
pub enum Output {
    /// Produce to the configured Kafka topics.
    Kafka {
        /// The generator's producer (idempotent, acks from all replicas).
        producer: FutureProducer,
        /// Encodes each event in its topic's wire format.
        codec: Codec,
        /// Schema registry id per stream, for `avro-confluent` topics (registered by [`super::register_schemas`]).
        ids: HashMap<Stream, u32>,
        /// The configuration the output was opened with (topics, formats).
        config: Box<Config>,
        /// Fraction (0-1) of extra truncated records sent to the call topic at [`Output::finish`] (`--malformed`).
        malformed: f64,
        /// Messages produced so far.
        sent: u64,
        /// Paces production to `--rate` messages a second; `None`: as fast as the producer goes.
        pacer: Option<Pacer>,
    },
    /// Write files into the directory instead (`--out-dir`): the writers and the directory.
    Files(FileOutput, PathBuf),
}

impl Output {
    /// Files under `out_dir` when given, else Kafka; `malformed` (`--malformed`) is the fraction
    /// of extra truncated records sent to the call topic at [`Output::finish`] (Kafka only);
    /// `rate` (`--rate`) paces Kafka output to that many messages a second.
    pub async fn open(
        config: &Config,
        out_dir: Option<&Path>,
        malformed: f64,
        rate: Option<u32>,
    ) -> anyhow::Result<Output> {
        if !(0.0..=1.0).contains(&malformed) {
            anyhow::bail!("--malformed {malformed}: must be a fraction in [0, 1]");
        }
        if rate == Some(0) {
            anyhow::bail!("--rate 0: give a positive number of messages a second, or leave it out");
        }
        Ok(match out_dir {
            Some(dir) => {
                if malformed > 0.0 {
                    anyhow::bail!("--malformed applies to Kafka output only");
                }
                if rate.is_some() {
                    anyhow::bail!("--rate applies to Kafka output only");
                }
                Output::Files(
                    FileOutput::create(config, dir)
                        .with_context(|| format!("--out-dir {}", dir.display()))?,
                    dir.to_path_buf(),
                )
            }
            None => Output::Kafka {
                producer: super::producer(config)?,
                codec: Codec::from_config(&config.topics)?,
                ids: super::register_schemas(config).await?,
                config: Box::new(config.clone()),
                malformed,
                sent: 0,
                pacer: rate.map(Pacer::new),
            },
        })
    }

    /// Send (or write) `events`; returns how many.
    pub async fn send(
        &mut self,
        events: &[DispatchEvent],
        progress: impl FnMut(u64),
    ) -> anyhow::Result<u64> {
        Ok(match self {
            Output::Kafka {
                producer,
                codec,
                ids,
                config,
                sent,
                pacer,
                ..
            } => {
                let n = super::produce_with(
                    producer,
                    config,
                    codec,
                    ids,
                    events,
                    pacer.as_mut(),
                    progress,
                )
                .await?;
                *sent += n;
                n
            }
            Output::Files(files, dir) => files
                .write(events)
                .with_context(|| format!("writing to {}", dir.display()))?,
        })
    }

    /// Flush; for Kafka with --malformed, send the malformed records (copies of `sample`'s calls).
    pub async fn finish(self, sample: &[DispatchEvent]) -> anyhow::Result<()> {
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
                    let m = super::produce_malformed(&producer, &config, &codec, sample, n).await?;
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
