//! Decoding without servers: every stream round-trips through both wire formats, and malformed
//! input gives typed errors that name the field.

use dispatch_ingest::decode::{Codec, DecodeError};
use dispatch_ingest::event::WireFormat;
use dispatch_ingest::event::{DispatchEvent, Envelope, Payload, Stream, Urgency};
use dispatch_ingest::generate::{sample_events, SampleOptions};
use uuid::Uuid;

const NOW: i64 = 1_735_689_600_000; // 2025-01-01

fn call(urgency: Urgency, municipality: &str) -> DispatchEvent {
    DispatchEvent {
        envelope: Envelope {
            event_id: Uuid::from_u128(42),
            incident_id: "INC-1".into(),
            dispatch_centre: "MKA Midden-Nederland".into(),
            occurred_at_ms: NOW - 3_600_000,
        },
        payload: Payload::Call {
            urgency,
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
            let back = codec.decode_local(e.stream(), &bytes, NOW).unwrap();
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
    let bytes = codec.encode(&call(Urgency::A1, "GM0363"));
    let err = codec
        .decode_local(Stream::Call, &bytes[..bytes.len() / 2], NOW)
        .unwrap_err();
    assert_eq!(err.kind(), "malformed_avro", "{err}");
    let mut longer = bytes.clone();
    longer.push(0);
    let err = codec.decode_local(Stream::Call, &longer, NOW).unwrap_err();
    assert_eq!(err, DecodeError::TrailingBytes(1));
}

#[test]
fn validation_errors_name_the_field() {
    let codec = Codec::bundled(WireFormat::Avro);
    let err = codec
        .decode_local(Stream::Call, &codec.encode(&call(Urgency::A1, "0363")), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("`municipality_code`"), "{err}");
    assert_eq!(err.kind(), "invalid_value");

    let mut old = call(Urgency::A1, "GM0363");
    old.envelope.occurred_at_ms = 900_000_000_000; // 1998
    let err = codec
        .decode_local(Stream::Call, &codec.encode(&old), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("`occurred_at`"), "{err}");

    let mut future = call(Urgency::A1, "GM0363");
    future.envelope.occurred_at_ms = NOW + 2 * 86_400_000;
    let err = codec
        .decode_local(Stream::Call, &codec.encode(&future), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("future"), "{err}");
}

#[test]
fn json_errors_name_the_field() {
    let codec = Codec::bundled(WireFormat::Json);
    let good = dispatch_ingest::decode::to_json(&call(Urgency::A0, "GM0363"));

    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("incident_id");
    let err = codec
        .decode_local(Stream::Call, missing.to_string().as_bytes(), NOW)
        .unwrap_err();
    assert_eq!(err, DecodeError::MissingField("incident_id".into()));

    let mut wrong = good.clone();
    wrong["occurred_at"] = serde_json::json!("yesterday");
    let err = codec
        .decode_local(Stream::Call, wrong.to_string().as_bytes(), NOW)
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::WrongType { field, .. } if field == "occurred_at"),
        "{err}"
    );

    let err = codec
        .decode_local(Stream::Call, b"{not json", NOW)
        .unwrap_err();
    assert_eq!(err.kind(), "malformed_json");

    let mut bad_uuid = good.clone();
    bad_uuid["event_id"] = serde_json::json!("not-a-uuid");
    let err = codec
        .decode_local(Stream::Call, bad_uuid.to_string().as_bytes(), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("`event_id`"), "{err}");

    // Optional fields may be absent; they default to null.
    let mut minimal = good.clone();
    minimal.as_object_mut().unwrap().remove("patient_age_years");
    minimal.as_object_mut().unwrap().remove("triage_code");
    let ev = codec
        .decode_local(Stream::Call, minimal.to_string().as_bytes(), NOW)
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
    let mut v = dispatch_ingest::decode::to_json(&call(Urgency::A1, "GM0363"));
    v["urgency"] = serde_json::json!("Z9");
    let ev = codec
        .decode_local(Stream::Call, v.to_string().as_bytes(), NOW)
        .unwrap();
    assert!(matches!(
        ev.payload,
        Payload::Call {
            urgency: Urgency::Unknown,
            ..
        }
    ));
}

/// Write `fields` (name, value) as a record of `schema` (Avro binary).
fn write_with(
    schema: &apache_avro::Schema,
    fields: Vec<(&str, apache_avro::types::Value)>,
) -> Vec<u8> {
    let record = apache_avro::types::Value::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    );
    apache_avro::to_avro_datum(schema, record).unwrap()
}

fn fixture(name: &str) -> apache_avro::Schema {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    apache_avro::Schema::parse_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn envelope_values() -> Vec<(&'static str, apache_avro::types::Value)> {
    use apache_avro::types::Value;
    vec![
        ("event_id", Value::String(Uuid::from_u128(7).to_string())),
        ("incident_id", Value::String("INC-EVOL".into())),
        (
            "dispatch_centre",
            Value::String("MKA Oost-Nederland".into()),
        ),
        ("occurred_at", Value::TimestampMillis(NOW - 1000)),
    ]
}

#[test]
fn newer_writer_schema_decodes_added_field_removed_field_and_new_symbol() {
    use apache_avro::types::Value;
    let v2 = fixture("call_received.v2.avsc");
    let urgency_index = |sym: &str| match &v2 {
        apache_avro::Schema::Record(r) => match &r
            .fields
            .iter()
            .find(|f| f.name == "urgency")
            .unwrap()
            .schema
        {
            apache_avro::Schema::Enum(e) => e.symbols.iter().position(|s| s == sym).unwrap() as u32,
            _ => unreachable!(),
        },
        _ => unreachable!(),
    };
    let mut fields = envelope_values();
    fields.push(("urgency", Value::Enum(urgency_index("A3"), "A3".into())));
    fields.push(("municipality_code", Value::String("GM0200".into())));
    fields.push((
        "patient_age_years",
        Value::Union(1, Box::new(Value::Int(80))),
    ));
    fields.push((
        "caller_language",
        Value::Union(1, Box::new(Value::String("nl".into()))),
    ));
    let bytes = write_with(&v2, fields);

    let codec = Codec::bundled(WireFormat::Avro);
    let ev = codec.decode_avro(Stream::Call, &v2, &bytes, NOW).unwrap();
    // The same schema from the registry is inside the stream's contract: the new symbol maps to
    // the reader enum's default, which apache-avro's compatibility check alone does not allow.
    let registered = Codec::bundled(WireFormat::AvroConfluent)
        .decode_registered(Stream::Call, 7, &v2, &bytes, NOW)
        .unwrap();
    assert_eq!(registered, ev);
    match ev.payload {
        Payload::Call {
            urgency,
            municipality_code,
            patient_age_years,
            triage_code,
        } => {
            assert_eq!(
                urgency,
                Urgency::Unknown,
                "a symbol the reader lacks takes the enum default"
            );
            assert_eq!(municipality_code, "GM0200");
            assert_eq!(patient_age_years, Some(80));
            assert_eq!(
                triage_code, None,
                "a field the writer dropped takes the reader default"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn older_writer_schema_decodes_with_reader_defaults() {
    use apache_avro::types::Value;
    let v0 = fixture("call_received.v0.avsc");
    let mut fields = envelope_values();
    fields.push(("urgency", Value::Enum(1, "A1".into())));
    fields.push(("municipality_code", Value::String("GM0363".into())));
    let bytes = write_with(&v0, fields);
    // The same through the configured-writer-schema path a topic would use.
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/call_received.v0.avsc");
    let codec = Codec::new(&[dispatch_ingest::decode::StreamFormat {
        stream: Stream::Call,
        format: WireFormat::Avro,
        writer_schema: Some(std::fs::read_to_string(path).unwrap()),
    }])
    .unwrap();
    let ev = codec.decode_local(Stream::Call, &bytes, NOW).unwrap();
    assert!(matches!(
        ev.payload,
        Payload::Call {
            urgency: Urgency::A1,
            patient_age_years: None,
            triage_code: None,
            ..
        }
    ));
}

#[test]
fn confluent_framing_is_checked() {
    use dispatch_ingest::decode::confluent_header;
    let codec = Codec::bundled(WireFormat::AvroConfluent);
    let ev = call(Urgency::A1, "GM0363");
    let framed = codec.encode_with_id(&ev, 258);
    assert_eq!(&framed[..5], &[0, 0, 0, 1, 2]);
    assert_eq!(confluent_header(&framed).unwrap().0, 258);
    assert_eq!(codec.decode_local(Stream::Call, &framed, NOW).unwrap(), ev);
    let mut wrong = framed.clone();
    wrong[0] = 1;
    assert_eq!(
        codec.decode_local(Stream::Call, &wrong, NOW).unwrap_err(),
        DecodeError::WrongMagicByte(1)
    );
    assert_eq!(
        codec
            .decode_local(Stream::Call, &framed[..3], NOW)
            .unwrap_err(),
        DecodeError::TooShort(3)
    );
}

#[test]
fn every_truncation_is_malformed_never_silently_null() {
    // apache-avro reads a missing trailing union as null; the codec must still see the truncation.
    for format in [WireFormat::Avro, WireFormat::AvroConfluent] {
        let codec = Codec::bundled(format);
        let mut ev = call(Urgency::A1, "GM0344");
        if let Payload::Call {
            patient_age_years,
            triage_code,
            ..
        } = &mut ev.payload
        {
            *patient_age_years = Some(34);
            *triage_code = None;
        }
        let bytes = codec.encode_with_id(&ev, 1);
        assert!(codec.decode_local(Stream::Call, &bytes, NOW).is_ok());
        let header = if format == WireFormat::AvroConfluent {
            5
        } else {
            0
        };
        for cut in 1..bytes.len() - header {
            let err = codec
                .decode_local(Stream::Call, &bytes[..bytes.len() - cut], NOW)
                .unwrap_err();
            assert!(
                matches!(err.kind(), "malformed_avro" | "truncated_frame"),
                "{format} cut {cut}: {err}"
            );
        }
    }
}

// Writer schemas from the registry (issue #10, defect 4): the id in a Confluent frame picks any
// registered schema, so a schema outside the stream's contract is refused, with the stream, the id
// and the reason, before a byte is decoded with it. Before, apache-avro decoded with it: an array
// block of a nullable union claiming 400 million items made it reserve ~20 GB up front.

/// Avro's zig-zag varint of a long.
fn varint(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// Peak virtual memory of this process, in KiB.
fn vm_peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmPeak:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn foreign_reason(e: DecodeError, stream: Stream, id: u32) -> String {
    match e {
        DecodeError::ForeignWriterSchema {
            stream: s,
            id: i,
            ref reason,
        } if s == stream && i == id => {
            let shown = e.to_string();
            assert!(
                shown.contains(&format!("id {id}")) && shown.contains(stream.name()),
                "{shown}"
            );
            assert_eq!(e.kind(), "foreign_writer_schema");
            reason.clone()
        }
        other => panic!("expected a foreign writer schema error for {stream} id {id}: {other:?}"),
    }
}

#[test]
fn an_array_block_claiming_millions_of_items_is_refused_with_bounded_memory() {
    let codec = Codec::bundled(WireFormat::AvroConfluent);
    let before = vm_peak_kib();
    // Six bytes: a block of 400 million items, then one null branch.
    let mut datum = varint(400_000_000);
    datum.push(0);
    assert_eq!(datum.len(), 6);
    let top =
        apache_avro::Schema::parse_str(r#"{"type":"array","items":["null","long"]}"#).unwrap();
    let e = codec
        .decode_registered(Stream::Call, 71, &top, &datum, NOW)
        .unwrap_err();
    assert!(foreign_reason(e, Stream::Call, 71).contains("array"));
    // The stream's own record with such an array as an extra field (which resolution would skip,
    // after decoding it).
    let mut schema: serde_json::Value = serde_json::from_str(Stream::Call.schema_json()).unwrap();
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "extra", "type": {"type": "array", "items": ["null", "long"]}, "default": []
        }));
    let record = apache_avro::Schema::parse_str(&schema.to_string()).unwrap();
    let ev = call(Urgency::A1, "GM0363");
    let mut bytes = Codec::bundled(WireFormat::Avro).encode_with_id(&ev, 0);
    bytes.extend(&datum);
    let e = codec
        .decode_registered(Stream::Call, 72, &record, &bytes, NOW)
        .unwrap_err();
    assert!(foreign_reason(e, Stream::Call, 72).contains("array"));
    let map =
        apache_avro::Schema::parse_str(r#"{"type":"map","values":["null","string"]}"#).unwrap();
    let e = codec
        .decode_registered(Stream::Call, 73, &map, &datum, NOW)
        .unwrap_err();
    assert!(foreign_reason(e, Stream::Call, 73).contains("map"));
    let grown_mib = (vm_peak_kib() - before) / 1024;
    assert!(
        grown_mib < 512,
        "peak virtual memory grew by {grown_mib} MiB"
    );
}

#[test]
fn recursive_and_deeply_nested_writer_schemas_are_refused() {
    let codec = Codec::bundled(WireFormat::AvroConfluent);
    let recursive = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#,
    )
    .unwrap();
    // A chain of 40 nested unions of one branch each, however short the datum.
    let e = codec
        .decode_registered(Stream::Alert, 81, &recursive, &[2; 40], NOW)
        .unwrap_err();
    assert!(foreign_reason(e, Stream::Alert, 81).contains("recursive"));
    let mut deep =
        String::from(r#"{"type":"record","name":"R0","fields":[{"name":"f","type":"long"}]}"#);
    for i in 1..40 {
        deep =
            format!(r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":{deep}}}]}}"#);
    }
    let deep = apache_avro::Schema::parse_str(&deep).unwrap();
    let e = codec
        .decode_registered(Stream::Alert, 82, &deep, &[0; 8], NOW)
        .unwrap_err();
    assert!(foreign_reason(e, Stream::Alert, 82).contains("deeper than 32"));
}

#[test]
fn a_writer_schema_that_does_not_resolve_is_refused_and_an_older_one_decodes() {
    let codec = Codec::bundled(WireFormat::AvroConfluent);
    // The call schema with municipality_code as a long: not readable as the reader's string.
    let mut schema: serde_json::Value = serde_json::from_str(Stream::Call.schema_json()).unwrap();
    for f in schema["fields"].as_array_mut().unwrap() {
        if f["name"] == "municipality_code" {
            f["type"] = serde_json::json!("long");
        }
    }
    let foreign = apache_avro::Schema::parse_str(&schema.to_string()).unwrap();
    let e = codec
        .decode_registered(Stream::Call, 91, &foreign, &[0; 40], NOW)
        .unwrap_err();
    let reason = foreign_reason(e, Stream::Call, 91);
    assert!(reason.contains("does not resolve"), "{reason}");
    // The verdict is kept per id: the same answer without checking again.
    let again = codec
        .decode_registered(Stream::Call, 91, &foreign, &[], NOW)
        .unwrap_err();
    assert_eq!(foreign_reason(again, Stream::Call, 91), reason);
    // An older schema of the stream is inside the contract and decodes with reader defaults.
    use apache_avro::types::Value;
    let v0 = fixture("call_received.v0.avsc");
    let mut fields = envelope_values();
    fields.push(("urgency", Value::Enum(1, "A1".into())));
    fields.push(("municipality_code", Value::String("GM0363".into())));
    let bytes = write_with(&v0, fields);
    let ev = codec
        .decode_registered(Stream::Call, 92, &v0, &bytes, NOW)
        .unwrap();
    assert_eq!(ev.stream(), Stream::Call);
}

#[test]
fn a_record_over_the_size_limit_is_refused_undecoded() {
    let limits = dispatch_ingest::decode::DecodeLimits {
        max_record_bytes: 1024,
        ..Default::default()
    };
    for format in [
        WireFormat::Avro,
        WireFormat::Json,
        WireFormat::AvroConfluent,
    ] {
        let codec = Codec::bundled(format).with_limits(limits);
        let mut ev = call(Urgency::A1, "GM0363");
        ev.envelope.incident_id = "I".repeat(2000);
        let bytes = codec.encode_with_id(&ev, 1);
        let e = codec.decode_local(Stream::Call, &bytes, NOW).unwrap_err();
        assert!(
            matches!(e, DecodeError::RecordTooLarge { limit: 1024, .. }),
            "{format}: {e:?}"
        );
        assert_eq!(e.kind(), "record_too_large");
    }
}
