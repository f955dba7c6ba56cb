//! Synthetic event streams, deterministic for a seed: whole incidents (a call, the alerted
//! units, on-scene arrivals, cancels and transports, in time order) produced to the stream topics
//! keyed by incident id, in each topic's configured wire format.

pub mod mmt;
pub mod national;
mod output;

pub use output::Output;

use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use uuid::Uuid;

use std::collections::HashMap;

use crate::config::Config;
use crate::decode::Codec;
use crate::event::{
    CancelReason, DispatchEvent, DispatchKind, Envelope, Payload, Stream, TransportMode, UnitType,
    Urgency, WireFormat,
};
use crate::kafka::client_config;

/// Dispatch centres (meldkamers ambulancezorg) the sample generator assigns incidents to at random.
pub const DISPATCH_CENTRES: [&str; 5] = [
    "MKA Noord-Nederland",
    "MKA Oost-Nederland",
    "MKA Midden-Nederland",
    "MKA Noord-Holland",
    "MKA Zuid-Nederland",
];

/// A handful of real CBS codes (2023) to place incidents.
pub const MUNICIPALITIES: [&str; 8] = [
    "GM0363", "GM0599", "GM0344", "GM0518", "GM0014", "GM0772", "GM0935", "GM0202",
];

const STATIONS: [&str; 4] = ["Amsterdam", "Rotterdam", "Volkel", "Eelde"];

/// Settings of the sample generator (`generate sample`).
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Number of incidents to generate.
    pub incidents: u32,
    /// Seed of the random generator: the same options give the same events.
    pub seed: u64,
    /// First incident time, UTC ms.
    pub start_ms: i64,
    /// Mean gap between incidents.
    pub spacing_ms: i64,
}

/// An alert of `unit` (a unit of `unit_type`, an MMT unit with its station) for an incident of
/// `urgency`: the alert every generator builds.
pub(crate) fn alert(
    unit: &str,
    unit_type: UnitType,
    station: Option<&str>,
    dispatch_kind: DispatchKind,
    urgency: Urgency,
) -> Payload {
    Payload::Alert {
        unit_id: unit.to_string(),
        unit_type,
        mmt_station: station.map(Into::into),
        dispatch_kind,
        urgency: Some(urgency),
    }
}

/// The alert of an ALS ambulance by the dispatcher on the 112 call.
pub(crate) fn ambulance_alert(unit: &str, urgency: Urgency) -> Payload {
    alert(
        unit,
        UnitType::AlsAmbulance,
        None,
        DispatchKind::Primary,
        urgency,
    )
}

/// The alert of an MMT unit of `station`: helicopter or car, primary (by the dispatcher on the
/// 112 call) or secondary (requested by the crew).
pub(crate) fn mmt_alert(
    unit: &str,
    helicopter: bool,
    station: &str,
    primary: bool,
    urgency: Urgency,
) -> Payload {
    let unit_type = if helicopter {
        UnitType::MmtHelicopter
    } else {
        UnitType::MmtCar
    };
    let kind = if primary {
        DispatchKind::Primary
    } else {
        DispatchKind::Secondary
    };
    alert(unit, unit_type, Some(station), kind, urgency)
}

/// `unit` arrives on scene.
pub(crate) fn on_scene(unit: &str) -> Payload {
    Payload::OnScene {
        unit_id: unit.to_string(),
    }
}

/// A random (version 4) UUID drawn from the generator's seeded `rng`, so a seed gives the same
/// ids every run.
fn uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// Sample incidents: every incident has a call, an ambulance alert and arrival; some get an MMT
/// alert that is either cancelled or arrives, and some a transport.
pub fn sample_events(opts: &SampleOptions) -> Vec<DispatchEvent> {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut events = Vec::new();
    let mut t = opts.start_ms;
    for i in 0..opts.incidents {
        t += rng.random_range(1..=opts.spacing_ms.max(1) * 2);
        let incident_id = format!("INC-{}-{:07}", opts.seed, i);
        let centre = DISPATCH_CENTRES[rng.random_range(0..DISPATCH_CENTRES.len())].to_string();
        let urgency = {
            use Urgency::*;
            [A0, A1, A1, A1, A2, A2, B1, B2][rng.random_range(0..8)]
        };
        let env = |rng: &mut StdRng, at: i64| Envelope {
            event_id: uuid(rng),
            incident_id: incident_id.clone(),
            dispatch_centre: centre.clone(),
            occurred_at_ms: at,
        };
        events.push(DispatchEvent {
            envelope: env(&mut rng, t),
            payload: Payload::Call {
                urgency,
                municipality_code: MUNICIPALITIES[rng.random_range(0..MUNICIPALITIES.len())].into(),
                patient_age_years: rng.random_bool(0.9).then(|| rng.random_range(0..100)),
                triage_code: None,
            },
        });
        let amb = format!(
            "AMB-{:02}-{:03}",
            rng.random_range(1..26),
            rng.random_range(1..200)
        );
        let alert_at = t + rng.random_range(30_000..120_000);
        events.push(DispatchEvent {
            envelope: env(&mut rng, alert_at),
            payload: ambulance_alert(&amb, urgency),
        });
        let on_scene_at = alert_at + rng.random_range(180_000..1_200_000);
        events.push(DispatchEvent {
            envelope: env(&mut rng, on_scene_at),
            payload: on_scene(&amb),
        });
        if rng.random_bool(0.15) {
            let station = STATIONS[rng.random_range(0..STATIONS.len())];
            let heli = rng.random_bool(0.75);
            let mmt = format!("MMT-{station}-{}", if heli { "H" } else { "C" });
            let mmt_at = t + rng.random_range(60_000..300_000);
            events.push(DispatchEvent {
                envelope: env(&mut rng, mmt_at),
                payload: mmt_alert(&mmt, heli, station, rng.random_bool(0.92), urgency),
            });
            if rng.random_bool(0.58) {
                events.push(DispatchEvent {
                    envelope: env(&mut rng, on_scene_at + 60_000),
                    payload: Payload::Cancel {
                        unit_id: mmt,
                        cancel_reason: CancelReason::AmbulanceAssessedNotNeeded,
                    },
                });
            } else {
                events.push(DispatchEvent {
                    envelope: {
                        let at = mmt_at + rng.random_range(300_000..1_500_000);
                        env(&mut rng, at)
                    },
                    payload: on_scene(&mmt),
                });
            }
        }
        if rng.random_bool(0.6) {
            events.push(DispatchEvent {
                envelope: {
                    let at = on_scene_at + rng.random_range(600_000..2_400_000);
                    env(&mut rng, at)
                },
                payload: Payload::Transport {
                    unit_id: amb,
                    mode: TransportMode::Ambulance,
                    mmt_physician_accompanies: false,
                    destination: None,
                    patient_age_years: None,
                    trauma: Some(rng.random_bool(0.5)),
                },
            });
        }
    }
    events.sort_by_key(|e| e.envelope.occurred_at_ms);
    events
}

/// Keep the incidents whose call (first event) falls within `[from, to]` (local dates, either
/// bound optional). Counts of the part follow from the calibrated whole.
pub fn within_dates(
    events: Vec<DispatchEvent>,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
) -> Vec<DispatchEvent> {
    if from.is_none() && to.is_none() {
        return events;
    }
    let keep: std::collections::HashSet<String> = events
        .iter()
        .filter(|e| e.stream() == Stream::Call)
        .filter(|e| {
            let d = crate::enrich::local_date(e.envelope.occurred_at_ms);
            from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)
        })
        .map(|e| e.envelope.incident_id.clone())
        .collect();
    events
        .into_iter()
        .filter(|e| keep.contains(&e.envelope.incident_id))
        .collect()
}

/// UTC milliseconds of a local time in Europe/Amsterdam; a time in the spring-forward gap (which
/// does not exist) is taken an hour later.
pub fn amsterdam_ms(local: chrono::NaiveDateTime) -> i64 {
    use chrono::TimeZone;
    let tz = chrono_tz::Europe::Amsterdam;
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                .earliest()
        })
        .expect("an hour after a gap exists")
        .timestamp_millis()
}

/// The shipped reference tables (tests of the generators).
#[cfg(test)]
pub(crate) fn shipped_reference() -> crate::enrich::reference::Reference {
    crate::enrich::reference::Reference::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference"),
    )
    .expect("shipped reference tables load")
}

/// Register each stream's bundled schema under `<topic>-value` (Confluent's TopicNameStrategy)
/// for topics in `avro-confluent` format; returns the schema id per stream.
pub async fn register_schemas(
    config: &Config,
) -> Result<HashMap<Stream, u32>, crate::decode::registry::RegistryError> {
    let mut ids = HashMap::new();
    let Some(settings) = crate::decode::registry::RegistrySettings::from_config(
        &config.schema_registry,
        &config.retry,
    ) else {
        return Ok(ids);
    };
    let registry = crate::decode::registry::RegistryClient::new(settings);
    for stream in Stream::ALL {
        let topic = config.topics.get(stream);
        if topic.format == WireFormat::AvroConfluent {
            let id = registry
                .register(&format!("{}-value", topic.name), stream.schema_json())
                .await?;
            ids.insert(stream, id);
        }
    }
    Ok(ids)
}

/// Produce events to their stream topics (keyed by incident id) and wait for every
/// acknowledgement. `schema_ids` holds the registry ids for Confluent-framed topics. Returns how
/// many were acknowledged.
pub async fn produce(
    config: &Config,
    codec: &Codec,
    schema_ids: &HashMap<Stream, u32>,
    events: &[DispatchEvent],
    progress: impl FnMut(u64),
) -> Result<u64, rdkafka::error::KafkaError> {
    let producer = producer(config)?;
    produce_with(&producer, config, codec, schema_ids, events, None, progress).await
}

/// Paces a producer to a steady rate (`--rate`): message `n` is sent no earlier than `n / rate`
/// seconds after the first. Benchmarks of freshness need input at a known rate; a generator
/// running flat out measures the generator.
#[derive(Debug, Clone)]
pub struct Pacer {
    per_second: u32,
    started: Option<std::time::Instant>,
    sent: u64,
}

impl Pacer {
    /// How many messages are sent between two checks of the clock.
    const STEP: u64 = 50;

    /// A pacer for `per_second` messages a second (at least 1).
    pub fn new(per_second: u32) -> Pacer {
        Pacer {
            per_second: per_second.max(1),
            started: None,
            sent: 0,
        }
    }

    /// When the next message may be sent, given the start of the stream: `None` for now.
    fn due(
        &self,
        started: std::time::Instant,
        now: std::time::Instant,
    ) -> Option<std::time::Instant> {
        let at = started + Duration::from_secs_f64(self.sent as f64 / self.per_second as f64);
        (at > now).then_some(at)
    }

    /// Count one message and wait until the next may go (checked every [`Pacer::STEP`]).
    async fn tick(&mut self) {
        let now = std::time::Instant::now();
        let started = *self.started.get_or_insert(now);
        self.sent += 1;
        if self.sent.is_multiple_of(Self::STEP) {
            if let Some(at) = self.due(started, now) {
                tokio::time::sleep_until(at.into()).await;
            }
        }
    }
}

/// The generator's producer: idempotent, acks from all replicas, batched.
pub fn producer(config: &Config) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    client_config(&config.kafka)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .create()
}

/// [`produce`] with a producer the caller keeps (for streams sent in chunks), paced by `pacer`
/// when given.
pub async fn produce_with(
    producer: &FutureProducer,
    config: &Config,
    codec: &Codec,
    schema_ids: &HashMap<Stream, u32>,
    events: &[DispatchEvent],
    mut pacer: Option<&mut Pacer>,
    mut progress: impl FnMut(u64),
) -> Result<u64, rdkafka::error::KafkaError> {
    let mut in_flight = FuturesUnordered::new();
    let mut acked = 0u64;
    for event in events {
        if let Some(p) = pacer.as_deref_mut() {
            p.tick().await;
        }
        let topic = config.topics.get(event.stream()).name.clone();
        let key = event.envelope.incident_id.clone();
        let id = schema_ids.get(&event.stream()).copied().unwrap_or(0);
        let payload = codec.encode_with_id(event, id);
        in_flight.push(async move {
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            producer
                .send(record, Timeout::After(Duration::from_secs(60)))
                .await
                .map_err(|(e, _)| e)
        });
        if in_flight.len() >= 10_000 {
            if let Some(r) = in_flight.next().await {
                r?;
                acked += 1;
                progress(acked);
            }
        }
    }
    while let Some(r) = in_flight.next().await {
        r?;
        acked += 1;
        progress(acked);
    }
    Ok(acked)
}

/// Send `n` malformed records (truncated encodings of `events`, keyed as the original) to the
/// call topic: noise for the dead-letter path.
pub async fn produce_malformed(
    producer: &FutureProducer,
    config: &Config,
    codec: &Codec,
    events: &[DispatchEvent],
    n: usize,
) -> Result<u64, rdkafka::error::KafkaError> {
    let topic = &config.topics.get(Stream::Call).name;
    let mut sent = 0;
    for e in events.iter().filter(|e| e.stream() == Stream::Call).take(n) {
        let bytes = codec.encode(e);
        let cut = &bytes[..bytes.len() / 3];
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&e.envelope.incident_id)
                    .payload(cut),
                Timeout::After(Duration::from_secs(60)),
            )
            .await
            .map_err(|(e, _)| e)?;
        sent += 1;
    }
    Ok(sent)
}

/// Events written to files instead of Kafka: `<dir>/<topic>.jsonl` for JSON topics, Avro object
/// container files `<dir>/<topic>.avro` (bundled schema) for Avro topics.
pub struct FileOutput {
    json: HashMap<Stream, std::io::BufWriter<std::fs::File>>,
    avro: HashMap<Stream, apache_avro::Writer<'static, std::io::BufWriter<std::fs::File>>>,
}

impl FileOutput {
    /// Open one file per stream topic under `dir` (created if missing), as `config`'s topic formats ask.
    pub fn create(config: &Config, dir: &std::path::Path) -> std::io::Result<FileOutput> {
        std::fs::create_dir_all(dir)?;
        let mut out = FileOutput {
            json: HashMap::new(),
            avro: HashMap::new(),
        };
        for stream in Stream::ALL {
            let t = config.topics.get(stream);
            if t.format == WireFormat::Json {
                let f = std::fs::File::create(dir.join(format!("{}.jsonl", t.name)))?;
                out.json.insert(stream, std::io::BufWriter::new(f));
            } else {
                let f = std::fs::File::create(dir.join(format!("{}.avro", t.name)))?;
                let schema = crate::decode::bundled_schema(stream);
                out.avro.insert(
                    stream,
                    apache_avro::Writer::new(schema, std::io::BufWriter::new(f)),
                );
            }
        }
        Ok(out)
    }

    /// Write `events` to their streams' files; returns how many.
    pub fn write(&mut self, events: &[DispatchEvent]) -> Result<u64, std::io::Error> {
        use std::io::Write;
        for e in events {
            if let Some(w) = self.json.get_mut(&e.stream()) {
                serde_json::to_writer(&mut *w, &crate::decode::to_json(e))?;
                w.write_all(b"\n")?;
            } else if let Some(w) = self.avro.get_mut(&e.stream()) {
                w.append(crate::decode::to_avro_value(e))
                    .map_err(std::io::Error::other)?;
            }
        }
        Ok(events.len() as u64)
    }

    /// Flush every file (and finish the Avro containers).
    pub fn finish(self) -> std::io::Result<()> {
        use std::io::Write;
        for (_, mut w) in self.json {
            w.flush()?;
        }
        for (_, w) in self.avro {
            w.into_inner().map_err(std::io::Error::other)?.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_ranges_keep_whole_incidents() {
        let events = sample_events(&SampleOptions {
            incidents: 200,
            seed: 3,
            start_ms: 1_704_067_200_000, // 2024-01-01
            spacing_ms: 3_600_000,
        });
        let from = chrono::NaiveDate::from_ymd_opt(2024, 1, 3).unwrap();
        let to = chrono::NaiveDate::from_ymd_opt(2024, 1, 4).unwrap();
        let part = within_dates(events.clone(), Some(from), Some(to));
        assert!(!part.is_empty() && part.len() < events.len());
        for e in part.iter().filter(|e| e.stream() == Stream::Call) {
            let d = crate::enrich::local_date(e.envelope.occurred_at_ms);
            assert!(d >= from && d <= to, "{d}");
        }
        // Every kept incident keeps all its events.
        let kept: std::collections::HashSet<_> =
            part.iter().map(|e| &e.envelope.incident_id).collect();
        let all_of_kept = events
            .iter()
            .filter(|e| kept.contains(&e.envelope.incident_id))
            .count();
        assert_eq!(all_of_kept, part.len());
        assert_eq!(within_dates(events.clone(), None, None).len(), events.len());
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let o = SampleOptions {
            incidents: 50,
            seed: 7,
            start_ms: 1_700_000_000_000,
            spacing_ms: 60_000,
        };
        let a = sample_events(&o);
        let b = sample_events(&o);
        assert_eq!(a, b);
        let c = sample_events(&SampleOptions {
            seed: 8,
            ..o.clone()
        });
        assert_ne!(a, c);
        // Every incident has its call, an alert and an arrival.
        let calls = a
            .iter()
            .filter(|e| matches!(e.payload, Payload::Call { .. }))
            .count();
        assert_eq!(calls, 50);
        assert!(a.len() >= 150);
        assert!(a
            .windows(2)
            .all(|w| w[0].envelope.occurred_at_ms <= w[1].envelope.occurred_at_ms));
    }

    #[test]
    fn the_pacer_holds_message_n_until_n_over_rate_seconds() {
        let start = std::time::Instant::now();
        let mut p = Pacer::new(1000);
        p.sent = 500;
        // Half a second's worth sent at once: wait until 0.5 s after the start.
        assert_eq!(
            p.due(start, start),
            Some(start + Duration::from_millis(500))
        );
        // Sent at the rate (or slower): no wait.
        assert_eq!(p.due(start, start + Duration::from_millis(500)), None);
        assert_eq!(p.due(start, start + Duration::from_secs(2)), None);
    }

    #[tokio::test]
    async fn a_paced_stream_is_never_faster_than_its_rate() {
        let mut p = Pacer::new(20_000);
        let start = std::time::Instant::now();
        for _ in 0..2_000 {
            p.tick().await;
        }
        // 2,000 messages at 20,000 a second: message 2,000 waits until 0.1 s after the first.
        // (No upper bound: a loaded machine may be slower, never faster.)
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(99), "{took:?}");
    }
}
