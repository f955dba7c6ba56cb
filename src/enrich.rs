//! Enrichment: pure functions from a decoded event (plus where it was read) to the row that is
//! written to ClickHouse. No state across events: joins across an incident's events happen in
//! ClickHouse.

use crate::decode::WireFormat;
use crate::event::{DispatchEvent, Payload, SourcePosition};
use crate::sink::EventRow;

/// Processing metadata recorded with each row.
#[derive(Debug, Clone)]
pub struct Meta<'a> {
    pub position: &'a SourcePosition,
    pub format: WireFormat,
    /// UTC seconds.
    pub ingested_at: u32,
}

/// Ages are stored as UInt8; the decoder already bounds them to 0..=130.
fn age(a: Option<i32>) -> Option<u8> {
    a.and_then(|a| u8::try_from(a).ok())
}

/// The ClickHouse row for an event.
pub fn to_row(event: &DispatchEvent, meta: &Meta<'_>) -> EventRow {
    let e = &event.envelope;
    let mut row = EventRow {
        event_id: e.event_id,
        event_type: event.stream().name().to_string(),
        incident_id: e.incident_id.clone(),
        dispatch_centre: e.dispatch_centre.clone(),
        occurred_at: (e.occurred_at_ms.div_euclid(1000)).clamp(0, i64::from(u32::MAX)) as u32,
        occurred_at_ms: e.occurred_at_ms,
        urgency: None,
        municipality_code: None,
        patient_age_years: None,
        triage_code: None,
        unit_id: None,
        unit_type: None,
        mmt_station: None,
        dispatch_kind: None,
        cancel_reason: None,
        transport_mode: None,
        mmt_physician_accompanies: None,
        destination: None,
        trauma: None,
        source_topic: meta.position.topic.clone(),
        source_partition: meta.position.partition,
        source_offset: meta.position.offset,
        wire_format: meta.format.to_string(),
        ingested_at: meta.ingested_at,
    };
    match &event.payload {
        Payload::Call {
            urgency,
            municipality_code,
            patient_age_years,
            triage_code,
        } => {
            row.urgency = Some(urgency.clone());
            row.municipality_code = Some(municipality_code.clone());
            row.patient_age_years = age(*patient_age_years);
            row.triage_code = triage_code.clone();
        }
        Payload::Alert {
            unit_id,
            unit_type,
            mmt_station,
            dispatch_kind,
            urgency,
        } => {
            row.unit_id = Some(unit_id.clone());
            row.unit_type = Some(unit_type.clone());
            row.mmt_station = mmt_station.clone();
            row.dispatch_kind = Some(dispatch_kind.clone());
            row.urgency = urgency.clone();
        }
        Payload::Cancel {
            unit_id,
            cancel_reason,
        } => {
            row.unit_id = Some(unit_id.clone());
            row.cancel_reason = Some(cancel_reason.clone());
        }
        Payload::OnScene { unit_id } => {
            row.unit_id = Some(unit_id.clone());
        }
        Payload::Transport {
            unit_id,
            mode,
            mmt_physician_accompanies,
            destination,
            patient_age_years,
            trauma,
        } => {
            row.unit_id = Some(unit_id.clone());
            row.transport_mode = Some(mode.clone());
            row.mmt_physician_accompanies = Some(u8::from(*mmt_physician_accompanies));
            row.destination = destination.clone();
            row.patient_age_years = age(*patient_age_years);
            row.trauma = trauma.map(u8::from);
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Envelope;
    use uuid::Uuid;

    fn pos() -> SourcePosition {
        SourcePosition {
            topic: "dispatch.calls".into(),
            partition: 2,
            offset: 41,
        }
    }

    #[test]
    fn call_fields_and_metadata_land_in_their_columns() {
        let id = Uuid::new_v4();
        let ev = DispatchEvent {
            envelope: Envelope {
                event_id: id,
                incident_id: "INC-1".into(),
                dispatch_centre: "MKA Noord-Nederland".into(),
                occurred_at_ms: 1_700_000_000_123,
            },
            payload: Payload::Call {
                urgency: "A1".into(),
                municipality_code: "GM0014".into(),
                patient_age_years: Some(7),
                triage_code: None,
            },
        };
        let p = pos();
        let row = to_row(
            &ev,
            &Meta {
                position: &p,
                format: WireFormat::Avro,
                ingested_at: 1_800_000_000,
            },
        );
        assert_eq!(row.event_id, id);
        assert_eq!(row.event_type, "call");
        assert_eq!(row.occurred_at, 1_700_000_000);
        assert_eq!(row.occurred_at_ms, 1_700_000_000_123);
        assert_eq!(row.urgency.as_deref(), Some("A1"));
        assert_eq!(row.municipality_code.as_deref(), Some("GM0014"));
        assert_eq!(row.patient_age_years, Some(7));
        assert_eq!(row.unit_id, None);
        assert_eq!((row.source_partition, row.source_offset), (2, 41));
        assert_eq!(row.wire_format, "avro");
    }

    #[test]
    fn transport_flags_keep_unknown_as_null() {
        let ev = DispatchEvent {
            envelope: Envelope {
                event_id: Uuid::new_v4(),
                incident_id: "INC-2".into(),
                dispatch_centre: "x".into(),
                occurred_at_ms: 1_700_000_000_000,
            },
            payload: Payload::Transport {
                unit_id: "U1".into(),
                mode: "HELICOPTER".into(),
                mmt_physician_accompanies: true,
                destination: None,
                patient_age_years: None,
                trauma: None,
            },
        };
        let p = pos();
        let row = to_row(
            &ev,
            &Meta {
                position: &p,
                format: WireFormat::Json,
                ingested_at: 0,
            },
        );
        assert_eq!(row.transport_mode.as_deref(), Some("HELICOPTER"));
        assert_eq!(row.mmt_physician_accompanies, Some(1));
        assert_eq!(row.trauma, None);
        assert_eq!(row.patient_age_years, None);
    }
}
