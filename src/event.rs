//! The domain types shared by every stage: the five dispatch streams and their events.
//!
//! Enum-valued fields (urgency, unit type, ...) are carried as their Avro symbol strings; the
//! decoder has already checked them against the schema, so downstream code can match on them.

use serde::Serialize;
use uuid::Uuid;

/// One of the five event streams. Each has its own topic and Avro record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Call,
    Alert,
    Cancel,
    OnScene,
    Transport,
}

impl Stream {
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
    pub event_id: Uuid,
    pub incident_id: String,
    pub dispatch_centre: String,
    /// UTC milliseconds since the epoch.
    pub occurred_at_ms: i64,
}

/// The stream-specific part of an event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Call {
        urgency: String,
        municipality_code: String,
        patient_age_years: Option<i32>,
        triage_code: Option<String>,
    },
    Alert {
        unit_id: String,
        unit_type: String,
        mmt_station: Option<String>,
        dispatch_kind: String,
        urgency: Option<String>,
    },
    Cancel {
        unit_id: String,
        cancel_reason: String,
    },
    OnScene {
        unit_id: String,
    },
    Transport {
        unit_id: String,
        mode: String,
        mmt_physician_accompanies: bool,
        destination: Option<String>,
        patient_age_years: Option<i32>,
        trauma: Option<bool>,
    },
}

impl Payload {
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
    #[serde(flatten)]
    pub envelope: Envelope,
    #[serde(flatten)]
    pub payload: Payload,
}

impl DispatchEvent {
    pub fn stream(&self) -> Stream {
        self.payload.stream()
    }
}

/// Where a record came from, carried with it through the pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourcePosition {
    pub topic: String,
    pub partition: i32,
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
