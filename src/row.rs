//! The row every event becomes: [`EventRow`], one row of `dispatch_events`. `enrich` builds it
//! and `sink` inserts it; neither owns the other.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A row of `dispatch_events`. Field names are the column names.
#[derive(Debug, Clone, Default, PartialEq, Row, Serialize, Deserialize)]
pub struct EventRow {
    /// Unique id of the event (from the envelope); the deduplication key.
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    /// The stream the event came from: `call`, `alert`, `cancel`, `on_scene` or `transport`.
    pub event_type: String,
    /// Id of the incident (melding) the event belongs to.
    pub incident_id: String,
    /// Dispatch centre (meldkamer ambulancezorg) that emitted the event.
    pub dispatch_centre: String,
    /// DateTime: UTC seconds.
    pub occurred_at: u32,
    /// When the event happened, UTC milliseconds since the Unix epoch (the exact value of `occurred_at`).
    pub occurred_at_ms: i64,
    /// Urgency symbol as sent (`A0` ... `C2`, pre-VUI `B`, `UNKNOWN`); calls and alerts that carry one.
    pub urgency: Option<String>,
    /// CBS municipality code of the incident location as sent (`GMxxxx`); calls only.
    pub municipality_code: Option<String>,
    /// Patient age in whole years (0-130), if known; calls and transports.
    pub patient_age_years: Option<u8>,
    /// Triage/complaint code (NTS/ProQA), if known; calls only.
    pub triage_code: Option<String>,
    /// Call sign of the unit; alerts, cancels, on-scene and transports.
    pub unit_id: Option<String>,
    /// Unit type symbol (e.g. `ALS_AMBULANCE`, `MMT_HELICOPTER`); alerts only.
    pub unit_type: Option<String>,
    /// MMT station as sent, for MMT units; alerts only.
    pub mmt_station: Option<String>,
    /// `PRIMARY` (on the 112 call), `SECONDARY` (crew's request) or `UNKNOWN`; alerts only.
    pub dispatch_kind: Option<String>,
    /// Cancel reason symbol (e.g. `WEATHER`); cancels only.
    pub cancel_reason: Option<String>,
    /// Transport mode symbol (`AMBULANCE`, `HELICOPTER`, `OTHER`); transports only.
    pub transport_mode: Option<String>,
    /// 1 when the MMT physician accompanies the patient during transport, else 0; transports only.
    pub mmt_physician_accompanies: Option<u8>,
    /// Receiving hospital, if known; transports only.
    pub destination: Option<String>,
    /// Explicit trauma flag as sent (1/0), if given; transports only.
    pub trauma: Option<u8>,
    /// Kafka topic the record was read from.
    pub source_topic: String,
    /// Kafka partition of the record.
    pub source_partition: i32,
    /// Kafka offset of the record within its partition.
    pub source_offset: i64,
    /// Wire format the record was decoded from: `avro`, `avro-confluent` or `json`.
    pub wire_format: String,
    /// DateTime: UTC seconds.
    pub ingested_at: u32,
    // Enrichment (migration 0002).
    /// VUI urgency after normalisation (pre-VUI `B` becomes `B2`); `None` for `UNKNOWN` or no urgency.
    pub urgency_vui: Option<String>,
    /// Rank of the VUI urgency: 1 (A0, most urgent) to 7 (C2).
    pub urgency_rank: Option<u8>,
    /// 1 for the emergency urgencies A0-A2, else 0.
    pub is_emergency: Option<u8>,
    /// Response-time norm in seconds for A0/A1/A2 (`enrich.norm_*_seconds`, default 900/900/1800); `None` otherwise.
    pub response_norm_seconds: Option<u16>,
    /// 1 when the patient's age is at most `enrich.child_max_age_years` (default 18), 0 when older; `None` when unknown.
    pub is_child: Option<u8>,
    /// 1 for trauma, 0 for not; `None` when neither the event nor its triage code says.
    pub is_trauma: Option<u8>,
    /// Where `is_trauma` came from: `explicit` (the event's flag) or `triage_code` (`triage_trauma.csv`).
    pub trauma_source: Option<String>,
    /// Municipality name on the event's local date, or `unknown`; calls only.
    pub municipality_name: Option<String>,
    /// Safety region code (`VR01`-`VR25`) of the municipality on the event's date, or `unknown`.
    pub region_code: Option<String>,
    /// Safety region name, or `unknown`.
    pub region_name: Option<String>,
    /// Province code of the region (`PV20`-`PV31`), or `unknown`.
    pub province_code: Option<String>,
    /// Province name, or `unknown`.
    pub province_name: Option<String>,
    /// The municipality the code belongs to today (after mergers), by the ingest date.
    pub municipality_code_current: Option<String>,
    /// The MMT station normalised from `mmt_station` (names and call signs), or `unknown` when none operates on that date.
    pub mmt_station_norm: Option<String>,
    /// Confluent Schema Registry id of the writer schema, for `avro-confluent` records.
    pub schema_id: Option<u32>,
}

impl EventRow {
    /// A rough size in bytes, for the batch byte limit.
    pub fn approx_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(1, |s| s.len() + 2);
        96 + self.incident_id.len()
            + self.dispatch_centre.len()
            + self.event_type.len()
            + self.source_topic.len()
            + opt(&self.urgency)
            + opt(&self.municipality_code)
            + opt(&self.triage_code)
            + opt(&self.unit_id)
            + opt(&self.unit_type)
            + opt(&self.mmt_station)
            + opt(&self.dispatch_kind)
            + opt(&self.cancel_reason)
            + opt(&self.transport_mode)
            + opt(&self.destination)
            + opt(&self.urgency_vui)
            + opt(&self.trauma_source)
            + opt(&self.municipality_name)
            + opt(&self.region_code)
            + opt(&self.region_name)
            + opt(&self.province_code)
            + opt(&self.province_name)
            + opt(&self.municipality_code_current)
            + opt(&self.mmt_station_norm)
    }
}
