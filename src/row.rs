//! The row every event becomes: [`EventRow`], one row of `dispatch_events`. `enrich` builds it
//! and `sink` inserts it; neither owns the other.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A row of `dispatch_events`. Field names are the column names.
#[derive(Debug, Clone, Default, PartialEq, Row, Serialize, Deserialize)]
pub struct EventRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub event_type: String,
    pub incident_id: String,
    pub dispatch_centre: String,
    /// DateTime: UTC seconds.
    pub occurred_at: u32,
    pub occurred_at_ms: i64,
    pub urgency: Option<String>,
    pub municipality_code: Option<String>,
    pub patient_age_years: Option<u8>,
    pub triage_code: Option<String>,
    pub unit_id: Option<String>,
    pub unit_type: Option<String>,
    pub mmt_station: Option<String>,
    pub dispatch_kind: Option<String>,
    pub cancel_reason: Option<String>,
    pub transport_mode: Option<String>,
    pub mmt_physician_accompanies: Option<u8>,
    pub destination: Option<String>,
    pub trauma: Option<u8>,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub wire_format: String,
    /// DateTime: UTC seconds.
    pub ingested_at: u32,
    // Enrichment (migration 0002).
    pub urgency_vui: Option<String>,
    pub urgency_rank: Option<u8>,
    pub is_emergency: Option<u8>,
    pub response_norm_seconds: Option<u16>,
    pub is_child: Option<u8>,
    pub is_trauma: Option<u8>,
    pub trauma_source: Option<String>,
    pub municipality_name: Option<String>,
    pub region_code: Option<String>,
    pub region_name: Option<String>,
    pub province_code: Option<String>,
    pub province_name: Option<String>,
    pub municipality_code_current: Option<String>,
    pub mmt_station_norm: Option<String>,
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
