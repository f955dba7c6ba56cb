//! Decoding without servers: every stream round-trips through both wire formats, and malformed
//! input gives typed errors that name the field.

use dispatch_ingest::decode::{Codec, DecodeError, WireFormat};
use dispatch_ingest::event::{DispatchEvent, Envelope, Payload, Stream};
use dispatch_ingest::generate::{sample_events, SampleOptions};
use uuid::Uuid;

const NOW: i64 = 1_735_689_600_000; // 2025-01-01

fn call(urgency: &str, municipality: &str) -> DispatchEvent {
    DispatchEvent {
        envelope: Envelope {
            event_id: Uuid::from_u128(42),
            incident_id: "INC-1".into(),
            dispatch_centre: "MKA Midden-Nederland".into(),
            occurred_at_ms: NOW - 3_600_000,
        },
        payload: Payload::Call {
            urgency: urgency.into(),
            municipality_code: municipality.into(),
            patient_age_years: Some(12),
            triage_code: Some("TR-01".into()),
        },
    }
}

#[test]
fn every_stream_round_trips_in_both_formats() {
    let events = sample_events(&SampleOptions {
        incidents: 300,
        seed: 3,
        start_ms: NOW - 10 * 86_400_000,
        spacing_ms: 60_000,
    });
    for format in [WireFormat::Avro, WireFormat::Json] {
        let codec = Codec::bundled(format);
        let mut seen = std::collections::BTreeSet::new();
        for e in &events {
            let bytes = codec.encode(e);
            let back = codec.decode(e.stream(), &bytes, NOW).unwrap();
            assert_eq!(&back, e, "{format}");
            seen.insert(e.stream());
        }
        assert_eq!(
            seen.len(),
            Stream::ALL.len(),
            "sample covers all five streams"
        );
    }
}

#[test]
fn bundled_schemas_parse_with_namespace() {
    for s in Stream::ALL {
        let schema = apache_avro::Schema::parse_str(s.schema_json()).unwrap();
        let name = match schema {
            apache_avro::Schema::Record(r) => r.name,
            other => panic!("{s}: not a record: {other:?}"),
        };
        assert_eq!(name.name, s.record_name());
        assert_eq!(name.namespace.as_deref(), Some("nl.dispatch.events.v1"));
    }
}

#[test]
fn malformed_avro_is_a_typed_error() {
    let codec = Codec::bundled(WireFormat::Avro);
    let bytes = codec.encode(&call("A1", "GM0363"));
    let err = codec
        .decode(Stream::Call, &bytes[..bytes.len() / 2], NOW)
        .unwrap_err();
    assert_eq!(err.kind(), "malformed_avro", "{err}");
    let mut longer = bytes.clone();
    longer.push(0);
    let err = codec.decode(Stream::Call, &longer, NOW).unwrap_err();
    assert_eq!(err, DecodeError::TrailingBytes(1));
}

#[test]
fn validation_errors_name_the_field() {
    let codec = Codec::bundled(WireFormat::Avro);
    let err = codec
        .decode(Stream::Call, &codec.encode(&call("A1", "0363")), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("`municipality_code`"), "{err}");
    assert_eq!(err.kind(), "invalid_value");

    let mut old = call("A1", "GM0363");
    old.envelope.occurred_at_ms = 900_000_000_000; // 1998
    let err = codec
        .decode(Stream::Call, &codec.encode(&old), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("`occurred_at`"), "{err}");

    let mut future = call("A1", "GM0363");
    future.envelope.occurred_at_ms = NOW + 2 * 86_400_000;
    let err = codec
        .decode(Stream::Call, &codec.encode(&future), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("future"), "{err}");
}

#[test]
fn json_errors_name_the_field() {
    let codec = Codec::bundled(WireFormat::Json);
    let good = dispatch_ingest::decode::to_json(&call("A0", "GM0363"));

    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("incident_id");
    let err = codec
        .decode(Stream::Call, missing.to_string().as_bytes(), NOW)
        .unwrap_err();
    assert_eq!(err, DecodeError::MissingField("incident_id".into()));

    let mut wrong = good.clone();
    wrong["occurred_at"] = serde_json::json!("yesterday");
    let err = codec
        .decode(Stream::Call, wrong.to_string().as_bytes(), NOW)
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::WrongType { field, .. } if field == "occurred_at"),
        "{err}"
    );

    let err = codec.decode(Stream::Call, b"{not json", NOW).unwrap_err();
    assert_eq!(err.kind(), "malformed_json");

    let mut bad_uuid = good.clone();
    bad_uuid["event_id"] = serde_json::json!("not-a-uuid");
    let err = codec
        .decode(Stream::Call, bad_uuid.to_string().as_bytes(), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("`event_id`"), "{err}");

    // Optional fields may be absent; they default to null.
    let mut minimal = good.clone();
    minimal.as_object_mut().unwrap().remove("patient_age_years");
    minimal.as_object_mut().unwrap().remove("triage_code");
    let ev = codec
        .decode(Stream::Call, minimal.to_string().as_bytes(), NOW)
        .unwrap();
    assert!(matches!(
        ev.payload,
        Payload::Call {
            patient_age_years: None,
            triage_code: None,
            ..
        }
    ));
}

#[test]
fn unknown_enum_symbol_takes_the_schema_default() {
    let codec = Codec::bundled(WireFormat::Json);
    let mut v = dispatch_ingest::decode::to_json(&call("A1", "GM0363"));
    v["urgency"] = serde_json::json!("Z9");
    let ev = codec
        .decode(Stream::Call, v.to_string().as_bytes(), NOW)
        .unwrap();
    assert!(matches!(ev.payload, Payload::Call { ref urgency, .. } if urgency == "UNKNOWN"));
}
