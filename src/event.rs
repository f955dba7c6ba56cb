//! The domain types shared by every stage: the five dispatch streams and their events.
//!
//! Enum-valued fields are typed: [`Urgency`], [`UnitType`], [`DispatchKind`], [`CancelReason`]
//! and [`TransportMode`], one variant per symbol of the Avro enum of the same name in
//! `schemas/avro/`. Each has one symbol mapping, `as_str()` and `FromStr` (derived with `strum`),
//! which `decode` (both directions, Avro and JSON), `enrich` (the row's string columns) and
//! `generate` all use; serde serialises a value as its symbol.
//!
//! **Unknown symbols.** The set of values is closed: there is no catch-all variant, because no
//! unknown symbol reaches the domain. Every enum in the schemas has a default, and the decoder
//! maps a symbol the bundled schema lacks to that default before the domain value is built:
//! Avro schema resolution does it for a newer writer schema, and the JSON conversion does it the
//! same way. So a newer producer's new urgency arrives as [`Urgency::Unknown`], a new unit type
//! as [`UnitType::Other`], and so on, exactly as the strings did before. A symbol of the bundled
//! schema that its enum here lacked would be a decode error (`unknown_enum_symbol`), but the unit
//! tests read the symbols from the `.avsc` files and fail on any difference between the two.

use serde::Serialize;
use strum::{EnumString, IntoStaticStr, VariantArray};
use uuid::Uuid;

/// `Serialize` as the Avro symbol, and `as_str()`: the one mapping to the symbol, beside
/// strum's `FromStr` for the other direction.
macro_rules! symbol_enum {
    ($($t:ident),+) => {$(
        impl $t {
            /// The Avro symbol.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )+};
}

/// Avro enum `Urgency`: the VUI urgencies A0 (most urgent) to C2, the pre-VUI planned urgency
/// `B`, and `UNKNOWN`, the schema's default for a symbol it does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Urgency {
    /// Highest urgency: immediate danger to life (split off from A1 under VUI); norm 15 minutes.
    A0,
    /// Emergency with (possible) danger to life; response-time norm 15 minutes.
    A1,
    /// Emergency without immediate danger to life; sector target 30 minutes.
    A2,
    /// Planned ambulance care, the more urgent of the two planned urgencies.
    B1,
    /// Planned ambulance care, the less urgent of the two planned urgencies.
    B2,
    /// No ambulance deployed, the more urgent of the two (the call is handled otherwise).
    C1,
    /// No ambulance deployed, the less urgent of the two.
    C2,
    /// Pre-VUI (before the 2024 rollout) planned urgency, covering today's B1 and B2.
    B,
    /// The schema's default for a symbol the bundled schema does not know (e.g. a newer urgency).
    Unknown,
}

impl Urgency {
    /// The VUI urgencies, most urgent first.
    pub const VUI: [Urgency; 7] = [
        Urgency::A0,
        Urgency::A1,
        Urgency::A2,
        Urgency::B1,
        Urgency::B2,
        Urgency::C1,
        Urgency::C2,
    ];
}

/// Avro enum `UnitType` (default `OTHER`). `MMT_*` are the mobile medical teams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum UnitType {
    /// Advanced life support ambulance (A-ambulance), the regular emergency ambulance.
    AlsAmbulance,
    /// Rapid responder (a single paramedic, no transport); counts for the response-time norm.
    RapidResponder,
    /// Medium care ambulance, for planned transports that need less than full ALS care.
    MediumCareAmbulance,
    /// Mobile medical team (physician + nurse) by helicopter.
    MmtHelicopter,
    /// Mobile medical team (physician + nurse) by car.
    MmtCar,
    /// Any other unit type, and the default for a symbol the bundled schema does not know.
    Other,
}

impl UnitType {
    /// A mobile medical team (helicopter or car).
    pub fn is_mmt(self) -> bool {
        matches!(self, UnitType::MmtHelicopter | UnitType::MmtCar)
    }
}

/// Avro enum `DispatchKind` (default `UNKNOWN`): `PRIMARY`, alerted by the dispatcher on the 112
/// call; `SECONDARY`, requested by the ambulance crew on scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum DispatchKind {
    /// Dispatched by the dispatcher on the 112 call.
    Primary,
    /// Requested by the ambulance crew on scene.
    Secondary,
    /// The schema's default: kind not given or not known.
    Unknown,
}

/// Avro enum `CancelReason` (default `OTHER`), the categories of the MMT factsheet's figure 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelReason {
    /// The ambulance crew on scene judged the MMT not needed.
    AmbulanceAssessedNotNeeded,
    /// The patient had died.
    PatientDeceased,
    /// No patient found, or only minor injury.
    NoPatientOrMinorInjury,
    /// The MMT was not available.
    MmtUnavailable,
    /// Weather did not allow the flight.
    Weather,
    /// The alert was a dispatch error.
    DispatchError,
    /// Any other reason, and the default for a symbol the bundled schema does not know.
    Other,
}

/// Avro enum `TransportMode` (default `OTHER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum TransportMode {
    /// By ambulance over the road.
    Ambulance,
    /// By helicopter.
    Helicopter,
    /// Any other mode, and the default for a symbol the bundled schema does not know.
    Other,
}

symbol_enum!(Urgency, UnitType, DispatchKind, CancelReason, TransportMode);

/// One of the five event streams. Each has its own topic and Avro record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// `CallReceived`: a 112 call was accepted by the dispatch centre (starts the response-time clock).
    Call,
    /// `UnitAlerted`: a unit was alerted for an incident.
    Alert,
    /// `AlertCancelled`: an alert was cancelled before the unit gave care.
    Cancel,
    /// `UnitOnScene`: a unit arrived on scene (the first ambulance stops the response-time clock).
    OnScene,
    /// `PatientTransported`: a patient left the scene by ambulance or helicopter.
    Transport,
}

impl Stream {
    /// Every stream, in the order of an incident's life.
    pub const ALL: [Stream; 5] = [
        Stream::Call,
        Stream::Alert,
        Stream::Cancel,
        Stream::OnScene,
        Stream::Transport,
    ];

    /// The name used in configuration keys, metrics labels and the `event_type` column.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Call => "call",
            Stream::Alert => "alert",
            Stream::Cancel => "cancel",
            Stream::OnScene => "on_scene",
            Stream::Transport => "transport",
        }
    }

    /// The stream whose [`Stream::name`] is `name` (e.g. `on_scene`).
    pub fn from_name(name: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The Avro record name (namespace `nl.dispatch.events.v1`).
    pub fn record_name(self) -> &'static str {
        match self {
            Stream::Call => "CallReceived",
            Stream::Alert => "UnitAlerted",
            Stream::Cancel => "AlertCancelled",
            Stream::OnScene => "UnitOnScene",
            Stream::Transport => "PatientTransported",
        }
    }

    /// The bundled (current) Avro schema, from `schemas/avro/`.
    pub fn schema_json(self) -> &'static str {
        match self {
            Stream::Call => include_str!("../schemas/avro/call_received.avsc"),
            Stream::Alert => include_str!("../schemas/avro/unit_alerted.avsc"),
            Stream::Cancel => include_str!("../schemas/avro/alert_cancelled.avsc"),
            Stream::OnScene => include_str!("../schemas/avro/unit_on_scene.avsc"),
            Stream::Transport => include_str!("../schemas/avro/patient_transported.avsc"),
        }
    }

    /// Default topic name.
    pub fn default_topic(self) -> &'static str {
        match self {
            Stream::Call => "dispatch.calls",
            Stream::Alert => "dispatch.alerts",
            Stream::Cancel => "dispatch.cancels",
            Stream::OnScene => "dispatch.on-scene",
            Stream::Transport => "dispatch.transports",
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Fields every event carries.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Envelope {
    /// Unique id of this event; the deduplication key.
    pub event_id: Uuid,
    /// Id of the incident (melding) the event belongs to; the Kafka message key.
    pub incident_id: String,
    /// Dispatch centre (meldkamer ambulancezorg) that emitted the event.
    pub dispatch_centre: String,
    /// UTC milliseconds since the epoch.
    pub occurred_at_ms: i64,
}

/// The stream-specific part of an event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// A 112 call accepted (`CallReceived`).
    Call {
        /// Urgency given by the triagist.
        urgency: Urgency,
        /// CBS municipality code of the incident location, `GM` plus four digits (e.g. `GM0363`).
        municipality_code: String,
        /// Patient age in whole years, if known.
        patient_age_years: Option<i32>,
        /// Triage/complaint code (NTS/ProQA), if known.
        triage_code: Option<String>,
    },
    /// A unit alerted for the incident (`UnitAlerted`).
    Alert {
        /// Call sign of the alerted unit.
        unit_id: String,
        /// Kind of unit alerted.
        unit_type: UnitType,
        /// MMT station (Amsterdam, Rotterdam, Volkel, Eelde, ...) for MMT units; `None` for others.
        mmt_station: Option<String>,
        /// Primary (on the 112 call) or secondary (on the crew's request).
        dispatch_kind: DispatchKind,
        /// Urgency of the alert, if it carries one.
        urgency: Option<Urgency>,
    },
    /// An alert cancelled before the unit gave care (`AlertCancelled`).
    Cancel {
        /// Call sign of the unit whose alert was cancelled.
        unit_id: String,
        /// Why the alert was cancelled.
        cancel_reason: CancelReason,
    },
    /// A unit arrived on scene (`UnitOnScene`).
    OnScene {
        /// Call sign of the unit that arrived.
        unit_id: String,
    },
    /// A patient transported from the scene (`PatientTransported`).
    Transport {
        /// Call sign of the transporting unit.
        unit_id: String,
        /// How the patient was transported.
        mode: TransportMode,
        /// True when the MMT physician accompanies the patient during transport.
        mmt_physician_accompanies: bool,
        /// Receiving hospital, if known.
        destination: Option<String>,
        /// Patient age in whole years, if known.
        patient_age_years: Option<i32>,
        /// Explicit trauma indication, if given.
        trauma: Option<bool>,
    },
}

impl Payload {
    /// The stream this payload belongs to.
    pub fn stream(&self) -> Stream {
        match self {
            Payload::Call { .. } => Stream::Call,
            Payload::Alert { .. } => Stream::Alert,
            Payload::Cancel { .. } => Stream::Cancel,
            Payload::OnScene { .. } => Stream::OnScene,
            Payload::Transport { .. } => Stream::Transport,
        }
    }
}

/// A decoded, validated event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DispatchEvent {
    /// The fields every event carries (ids, dispatch centre, time).
    #[serde(flatten)]
    pub envelope: Envelope,
    /// The stream-specific fields; its variant determines the stream.
    #[serde(flatten)]
    pub payload: Payload,
}

impl DispatchEvent {
    /// The stream the event came from, by its payload.
    pub fn stream(&self) -> Stream {
        self.payload.stream()
    }
}

/// Where a record came from, carried with it through the pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourcePosition {
    /// Kafka topic the record was read from.
    pub topic: String,
    /// Kafka partition within the topic.
    pub partition: i32,
    /// Offset of the record within the partition.
    pub offset: i64,
}

impl std::fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "topic {} partition {} offset {}",
            self.topic, self.partition, self.offset
        )
    }
}

/// How the bytes of a topic are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireFormat {
    /// Avro binary datum, no framing; written with the configured writer schema.
    Avro,
    /// Confluent wire format: magic byte 0, schema id (4 bytes, big-endian), Avro datum; the
    /// writer schema comes from the Schema Registry.
    AvroConfluent,
    /// One JSON object per message, with the Avro field names.
    Json,
}

impl std::fmt::Display for WireFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WireFormat::Avro => "avro",
            WireFormat::AvroConfluent => "avro-confluent",
            WireFormat::Json => "json",
        })
    }
}

/// True for a CBS municipality code: `GM` followed by four digits.
pub fn is_municipality_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 6 && b.starts_with(b"GM") && b[2..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// One enum type as a bundled schema defines it.
    struct SchemaEnum {
        file: String,
        name: String,
        symbols: Vec<String>,
        default: Option<String>,
    }

    /// Every enum definition in every file of `schemas/avro/`, read from the files themselves.
    fn schema_enums() -> Vec<SchemaEnum> {
        fn walk(file: &str, v: &serde_json::Value, out: &mut Vec<SchemaEnum>) {
            match v {
                serde_json::Value::Object(o) => {
                    if o.get("type").and_then(|t| t.as_str()) == Some("enum") {
                        let strings = |key: &str| -> Vec<String> {
                            o[key]
                                .as_array()
                                .unwrap_or_else(|| panic!("{file}: enum without {key}"))
                                .iter()
                                .map(|s| s.as_str().expect("symbol string").to_string())
                                .collect()
                        };
                        out.push(SchemaEnum {
                            file: file.to_string(),
                            name: o["name"].as_str().expect("enum name").to_string(),
                            symbols: strings("symbols"),
                            default: o.get("default").and_then(|d| d.as_str()).map(Into::into),
                        });
                    }
                    o.values().for_each(|x| walk(file, x, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(file, x, out)),
                _ => {}
            }
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/avro");
        let mut out = Vec::new();
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("schemas/avro") {
            let path = entry.expect("dir entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("avsc") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).expect("readable schema");
            let json: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
            walk(&path.display().to_string(), &json, &mut out);
        }
        assert_eq!(files, Stream::ALL.len(), "one schema file per stream");
        out
    }

    /// The domain enum `T` has exactly the symbols, in the schema's order, of every definition of
    /// the Avro enum `name`, each symbol maps to a variant and back, and the default is a variant.
    fn round_trip<T>(name: &str, as_str: fn(T) -> &'static str)
    where
        T: VariantArray + FromStr + Copy + PartialEq + std::fmt::Debug + Serialize,
    {
        let defs: Vec<SchemaEnum> = schema_enums()
            .into_iter()
            .filter(|e| e.name == name)
            .collect();
        assert!(!defs.is_empty(), "no schema defines enum {name}");
        let ours: Vec<&str> = T::VARIANTS.iter().map(|v| as_str(*v)).collect();
        for def in defs {
            assert_eq!(
                ours, def.symbols,
                "{name} in {} vs the domain enum",
                def.file
            );
            for symbol in &def.symbols {
                let v = T::from_str(symbol)
                    .unwrap_or_else(|_| panic!("{name}: symbol {symbol} has no variant"));
                assert_eq!(as_str(v), symbol, "{name}: {symbol} round trip");
                assert_eq!(
                    serde_json::to_value(v).unwrap(),
                    serde_json::json!(symbol),
                    "{name}: serde writes the symbol"
                );
            }
            let default = def
                .default
                .unwrap_or_else(|| panic!("{name} in {} has no default", def.file));
            assert!(T::from_str(&default).is_ok(), "{name}: default {default}");
        }
    }

    #[test]
    fn every_schema_symbol_round_trips_through_its_domain_enum() {
        round_trip::<Urgency>("Urgency", Urgency::as_str);
        round_trip::<UnitType>("UnitType", UnitType::as_str);
        round_trip::<DispatchKind>("DispatchKind", DispatchKind::as_str);
        round_trip::<CancelReason>("CancelReason", CancelReason::as_str);
        round_trip::<TransportMode>("TransportMode", TransportMode::as_str);
    }

    #[test]
    fn every_schema_enum_has_a_domain_enum() {
        let mut names: Vec<String> = schema_enums().into_iter().map(|e| e.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names,
            [
                "CancelReason",
                "DispatchKind",
                "TransportMode",
                "UnitType",
                "Urgency"
            ],
            "an enum was added to schemas/avro/: give it a domain enum and a round_trip line"
        );
    }

    #[test]
    fn symbols_are_exact() {
        for s in ["a1", " A1", "A3", "", "Unknown"] {
            assert!(Urgency::from_str(s).is_err(), "{s:?}");
        }
        assert_eq!(Urgency::from_str("UNKNOWN"), Ok(Urgency::Unknown));
        assert_eq!(UnitType::MmtHelicopter.to_string(), "MMT_HELICOPTER");
        assert!(UnitType::MmtCar.is_mmt() && !UnitType::RapidResponder.is_mmt());
    }
}
