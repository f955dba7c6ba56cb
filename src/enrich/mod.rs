//! Enrichment: pure functions from a decoded event (plus where it was read) to the row that is
//! written to ClickHouse. No state across events: joins across an incident's events happen in
//! ClickHouse. The rules, each a function tested on its own:
//!
//! * **Urgency** ([`normalize_urgency`], [`urgency_info`]): VUI A0-C2. The pre-VUI codes (A1, A2,
//!   B; before the 2024 rollout) map to A1, A2 and B2: A0 was split off the old A1, so an old A1
//!   stays A1 (its norm is the same); the old planned B covered B1 and B2 and is taken as B2, the
//!   mid/low-complex bulk. Derived: rank (1 = A0, most urgent), `is_emergency` (A0-A2) and the
//!   response norm: A0 and A1 900 s (Regeling ambulancezorgvoorzieningen art. 5(1): 95% of A1
//!   within 15 minutes per safety region; A0 is split from A1 and keeps its norm), A2 1800 s (the
//!   sector's 30-minute target, not a legal norm); all three configurable.
//! * **Child** ([`is_child`]): age <= `enrich.child_max_age_years` (18, the factsheet's "18 jaar of
//!   jonger"); unknown age stays unknown.
//! * **Trauma** ([`trauma`]): an explicit flag on the event wins; else the triage code through
//!   `triage_trauma.csv`; else unknown.
//! * **Geography** ([`Enricher::geography`]): municipality -> name, safety region, province as the
//!   layout stood on the event's local date (Europe/Amsterdam), plus the municipality it belongs to
//!   today; an unknown code keeps the event with region `unknown`.
//! * **MMT station** ([`Enricher::station`]): names and call signs to the station, if it operates
//!   on the event's date; otherwise `unknown`.

pub mod reference;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use chrono::{NaiveDate, TimeZone};

use crate::config::EnrichConfig;
use crate::event::{DispatchEvent, Payload, SourcePosition, Urgency, WireFormat};
use crate::row::EventRow;
use crate::telemetry;
use reference::Reference;

/// Value of `region_code` (and the other geography columns) when the municipality is unknown.
pub const UNKNOWN: &str = "unknown";

/// Response-time norms in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Norms {
    /// Norm for A0, in seconds (`enrich.norm_a0_seconds`, default 900).
    pub a0: u16,
    /// Norm for A1, in seconds (`enrich.norm_a1_seconds`, default 900).
    pub a1: u16,
    /// Norm for A2, in seconds (`enrich.norm_a2_seconds`, default 1800).
    pub a2: u16,
}

/// The VUI urgency of an urgency as sent: a VUI urgency is itself, the pre-VUI planned `B` is
/// B2, and `UNKNOWN` (the schema default for a symbol it does not know) has none.
pub fn normalize_urgency(urgency: Urgency) -> Option<Urgency> {
    match urgency {
        Urgency::B => Some(Urgency::B2),
        Urgency::Unknown => None,
        vui => Some(vui),
    }
}

/// What a VUI urgency implies: its rank, whether it is an emergency and its response norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UrgencyInfo {
    /// The VUI urgency (A0-C2).
    pub vui: Urgency,
    /// 1 (A0) to 7 (C2).
    pub rank: u8,
    /// True for A0, A1 and A2.
    pub is_emergency: bool,
    /// The response-time norm in seconds for A0-A2; `None` for the others.
    pub norm_seconds: Option<u16>,
}

/// Rank, emergency and norm of a VUI urgency (from [`normalize_urgency`]).
pub fn urgency_info(vui: Urgency, norms: &Norms) -> UrgencyInfo {
    let rank = Urgency::VUI
        .iter()
        .position(|u| *u == vui)
        .map_or(0, |i| i as u8 + 1);
    UrgencyInfo {
        vui,
        rank,
        is_emergency: (1..=3).contains(&rank),
        norm_seconds: match vui {
            Urgency::A0 => Some(norms.a0),
            Urgency::A1 => Some(norms.a1),
            Urgency::A2 => Some(norms.a2),
            _ => None,
        },
    }
}

/// Child when the age is known and at most `max_age`.
pub fn is_child(age: Option<i32>, max_age: u8) -> Option<bool> {
    age.map(|a| a <= i32::from(max_age))
}

/// Where a trauma indication came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraumaSource {
    /// The event's own trauma flag.
    Explicit,
    /// Looked up from the triage code in `triage_trauma.csv`.
    TriageCode,
}

impl TraumaSource {
    /// The value of the `trauma_source` column: `explicit` or `triage_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            TraumaSource::Explicit => "explicit",
            TraumaSource::TriageCode => "triage_code",
        }
    }
}

/// Explicit flag first, then the triage table, else unknown.
pub fn trauma(
    explicit: Option<bool>,
    triage_code: Option<&str>,
    reference: &Reference,
) -> Option<(bool, TraumaSource)> {
    if let Some(t) = explicit {
        return Some((t, TraumaSource::Explicit));
    }
    triage_code
        .and_then(|c| reference.triage_trauma(c))
        .map(|t| (t, TraumaSource::TriageCode))
}

/// The local (Europe/Amsterdam) date of an instant.
pub fn local_date(ms: i64) -> NaiveDate {
    chrono_tz::Europe::Amsterdam
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or(NaiveDate::MIN)
}

/// Geography of a municipality on a date.
#[derive(Debug, Clone, PartialEq)]
pub struct Geography {
    /// Municipality name on the date, or `unknown`.
    pub municipality_name: String,
    /// Safety region code (`VR01`-`VR25`), or `unknown`.
    pub region_code: String,
    /// Safety region name, or `unknown`.
    pub region_name: String,
    /// Province code, or `unknown`.
    pub province_code: String,
    /// Province name, or `unknown`.
    pub province_name: String,
    /// The municipality the code belongs to today, after any mergers.
    pub municipality_code_current: String,
}

/// Enrichment settings plus the reference tables.
pub struct Enricher {
    /// The reference tables (regions, municipalities by date, successors, MMT stations, triage codes).
    pub reference: Reference,
    /// A patient of at most this age in years is a child (`enrich.child_max_age_years`, default 18).
    pub child_max_age: u8,
    /// Response-time norms per urgency, in seconds.
    pub norms: Norms,
    unknown_logged: Mutex<HashSet<String>>,
}

impl Enricher {
    /// Load the reference tables named in `[enrich]` and build the enricher from its settings.
    pub fn from_config(e: &EnrichConfig) -> Result<Enricher, reference::ReferenceError> {
        let reference = Reference::load(Path::new(&e.reference_dir))?;
        Ok(Enricher::new(
            reference,
            e.child_max_age_years,
            Norms {
                a0: e.norm_a0_seconds,
                a1: e.norm_a1_seconds,
                a2: e.norm_a2_seconds,
            },
        ))
    }

    /// An enricher from loaded reference tables and its settings.
    pub fn new(reference: Reference, child_max_age: u8, norms: Norms) -> Enricher {
        Enricher {
            reference,
            child_max_age,
            norms,
            unknown_logged: Mutex::new(HashSet::new()),
        }
    }

    /// Geography on the event's date; region `unknown` (counted, logged once per code) when the
    /// table does not know the code on that date. `today` (the ingest date, from the caller's
    /// clock) decides which code is current.
    pub fn geography(&self, code: &str, date: NaiveDate, today: NaiveDate) -> Geography {
        let current = self.reference.current_code(code, today);
        match self.reference.municipality_on(code, date) {
            Some((m, r)) => Geography {
                municipality_name: m.name.clone(),
                region_code: r.code.clone(),
                region_name: r.name.clone(),
                province_code: r.province_code.clone(),
                province_name: r.province_name.clone(),
                municipality_code_current: current,
            },
            None => {
                let first = self
                    .unknown_logged
                    .lock()
                    .expect("lock")
                    .insert(code.to_string());
                telemetry::unknown_municipality(code, date, first);
                Geography {
                    municipality_name: UNKNOWN.into(),
                    region_code: UNKNOWN.into(),
                    region_name: UNKNOWN.into(),
                    province_code: UNKNOWN.into(),
                    province_name: UNKNOWN.into(),
                    municipality_code_current: current,
                }
            }
        }
    }

    /// The normalised station, or `unknown` (counted) when the name matches no station operating
    /// on that date.
    pub fn station(&self, raw: &str, date: NaiveDate) -> String {
        match self.reference.station_on(raw, date) {
            Some(s) => s.to_string(),
            None => {
                telemetry::unknown_mmt_station(raw, date);
                UNKNOWN.into()
            }
        }
    }
}

/// Processing metadata recorded with each row.
#[derive(Debug, Clone)]
pub struct Meta<'a> {
    /// Topic, partition and offset the record was read from.
    pub position: &'a SourcePosition,
    /// Wire format the record was decoded from.
    pub format: WireFormat,
    /// Confluent schema id of the writer schema, for `avro-confluent`.
    pub schema_id: Option<u32>,
    /// UTC seconds. The clock of the enrichment: the current municipality code is the one valid
    /// on this (Amsterdam) date.
    pub ingested_at: u32,
}

/// Ages are stored as UInt8; the decoder already bounds them to 0..=130.
fn age(a: Option<i32>) -> Option<u8> {
    a.and_then(|a| u8::try_from(a).ok())
}

/// The ClickHouse row for an event.
pub fn to_row(event: &DispatchEvent, meta: &Meta<'_>, enricher: &Enricher) -> EventRow {
    let e = &event.envelope;
    let mut row = EventRow {
        event_id: e.event_id,
        event_type: event.stream().name().to_string(),
        incident_id: e.incident_id.clone(),
        dispatch_centre: e.dispatch_centre.clone(),
        occurred_at: (e.occurred_at_ms.div_euclid(1000)).clamp(0, i64::from(u32::MAX)) as u32,
        occurred_at_ms: e.occurred_at_ms,
        source_topic: meta.position.topic.clone(),
        source_partition: meta.position.partition,
        source_offset: meta.position.offset,
        wire_format: meta.format.to_string(),
        schema_id: meta.schema_id,
        ingested_at: meta.ingested_at,
        ..EventRow::default()
    };
    let date = local_date(e.occurred_at_ms);
    match &event.payload {
        Payload::Call {
            urgency,
            municipality_code,
            patient_age_years,
            triage_code,
        } => {
            set_urgency(&mut row, *urgency, enricher);
            row.municipality_code = Some(municipality_code.clone());
            let today = local_date(i64::from(meta.ingested_at) * 1000);
            set_geography(&mut row, enricher.geography(municipality_code, date, today));
            set_patient_age(&mut row, *patient_age_years, enricher);
            row.triage_code = triage_code.clone();
            set_trauma(
                &mut row,
                trauma(None, triage_code.as_deref(), &enricher.reference),
            );
        }
        Payload::Alert {
            unit_id,
            unit_type,
            mmt_station,
            dispatch_kind,
            urgency,
        } => {
            row.unit_id = Some(unit_id.clone());
            row.unit_type = Some(unit_type.as_str().to_string());
            row.mmt_station = mmt_station.clone();
            row.mmt_station_norm = mmt_station.as_deref().map(|s| enricher.station(s, date));
            row.dispatch_kind = Some(dispatch_kind.as_str().to_string());
            if let Some(u) = urgency {
                set_urgency(&mut row, *u, enricher);
            }
        }
        Payload::Cancel {
            unit_id,
            cancel_reason,
        } => {
            row.unit_id = Some(unit_id.clone());
            row.cancel_reason = Some(cancel_reason.as_str().to_string());
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
            row.transport_mode = Some(mode.as_str().to_string());
            row.mmt_physician_accompanies = Some(u8::from(*mmt_physician_accompanies));
            row.destination = destination.clone();
            set_patient_age(&mut row, *patient_age_years, enricher);
            row.trauma = trauma.map(u8::from);
            set_trauma(&mut row, self::trauma(*trauma, None, &enricher.reference));
        }
    }
    row
}

/// The urgency as sent, and its VUI class, rank, emergency flag and norm.
fn set_urgency(row: &mut EventRow, urgency: Urgency, enricher: &Enricher) {
    row.urgency = Some(urgency.as_str().to_string());
    if let Some(vui) = normalize_urgency(urgency) {
        let info = urgency_info(vui, &enricher.norms);
        row.urgency_vui = Some(info.vui.as_str().to_string());
        row.urgency_rank = Some(info.rank);
        row.is_emergency = Some(u8::from(info.is_emergency));
        row.response_norm_seconds = info.norm_seconds;
    }
}

/// The municipality's names, region and province, and today's municipality code.
fn set_geography(row: &mut EventRow, geo: Geography) {
    row.municipality_name = Some(geo.municipality_name);
    row.region_code = Some(geo.region_code);
    row.region_name = Some(geo.region_name);
    row.province_code = Some(geo.province_code);
    row.province_name = Some(geo.province_name);
    row.municipality_code_current = Some(geo.municipality_code_current);
}

/// The patient's age and whether the patient is a child (`enrich.child_max_age`).
fn set_patient_age(row: &mut EventRow, years: Option<i32>, enricher: &Enricher) {
    row.patient_age_years = age(years);
    row.is_child = is_child(years, enricher.child_max_age).map(u8::from);
}

/// The trauma flag and where it came from, when known.
fn set_trauma(row: &mut EventRow, t: Option<(bool, TraumaSource)>) {
    if let Some((t, source)) = t {
        row.is_trauma = Some(u8::from(t));
        row.trauma_source = Some(source.as_str().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CancelReason, DispatchKind, Envelope, TransportMode, UnitType};
    use std::path::Path;
    use uuid::Uuid;

    const NORMS: Norms = Norms {
        a0: 900,
        a1: 900,
        a2: 1800,
    };

    fn enricher() -> Enricher {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference");
        Enricher::new(Reference::load(&dir).unwrap(), 18, NORMS)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn urgency_codes_normalise_to_vui() {
        use Urgency::*;
        let cases = [
            (A0, Some(A0)),
            (A1, Some(A1)),
            (A2, Some(A2)),
            (B1, Some(B1)),
            (B2, Some(B2)),
            (C1, Some(C1)),
            (C2, Some(C2)),
            // pre-VUI planned urgency
            (B, Some(B2)),
            // the schema default for a symbol it does not know: not an urgency
            (Unknown, None),
        ];
        assert_eq!(
            cases.len(),
            <Urgency as strum::VariantArray>::VARIANTS.len()
        );
        for (raw, want) in cases {
            assert_eq!(normalize_urgency(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn urgency_rank_emergency_and_norm() {
        use Urgency::*;
        let cases = [
            (A0, 1, true, Some(900)),
            (A1, 2, true, Some(900)),
            (A2, 3, true, Some(1800)),
            (B1, 4, false, None),
            (B2, 5, false, None),
            (C1, 6, false, None),
            (C2, 7, false, None),
        ];
        for (vui, rank, emergency, norm) in cases {
            let info = urgency_info(normalize_urgency(vui).unwrap(), &NORMS);
            assert_eq!(
                (info.rank, info.is_emergency, info.norm_seconds),
                (rank, emergency, norm),
                "{vui}"
            );
        }
        let custom = Norms {
            a0: 600,
            a1: 900,
            a2: 1800,
        };
        assert_eq!(urgency_info(A0, &custom).norm_seconds, Some(600));
    }

    #[test]
    fn child_flag_keeps_unknown_unknown() {
        let cases = [
            (Some(0), 18, Some(true)),
            (Some(18), 18, Some(true)),
            (Some(19), 18, Some(false)),
            (Some(16), 15, Some(false)),
            (None, 18, None),
        ];
        for (age, max, want) in cases {
            assert_eq!(is_child(age, max), want, "{age:?} <= {max}");
        }
    }

    #[test]
    fn trauma_explicit_wins_then_triage_table_then_unknown() {
        let e = enricher();
        let r = &e.reference;
        let cases = [
            (
                Some(false),
                Some("TRAUMA-HIGH-ENERGY"),
                Some((false, TraumaSource::Explicit)),
            ),
            (Some(true), None, Some((true, TraumaSource::Explicit))),
            (
                None,
                Some("TRAUMA-HIGH-ENERGY"),
                Some((true, TraumaSource::TriageCode)),
            ),
            (
                None,
                Some("trauma-penetrating"),
                Some((true, TraumaSource::TriageCode)),
            ),
            (
                None,
                Some("CHEST-PAIN"),
                Some((false, TraumaSource::TriageCode)),
            ),
            (None, Some("NOT-IN-TABLE"), None),
            (None, None, None),
        ];
        for (explicit, code, want) in cases {
            assert_eq!(trauma(explicit, code, r), want, "{explicit:?} {code:?}");
        }
    }

    #[test]
    fn geography_follows_the_event_date_across_mergers() {
        let e = enricher();
        let cases = [
            // Brielle before and after it became Voorne aan Zee on 2023-01-01.
            ("GM0501", "2022-12-31", "Brielle", "VR17", "GM1992"),
            ("GM0501", "2023-01-01", UNKNOWN, UNKNOWN, "GM1992"),
            ("GM1992", "2022-12-31", UNKNOWN, UNKNOWN, "GM1992"),
            ("GM1992", "2023-01-01", "Voorne aan Zee", "VR17", "GM1992"),
            // Weesp (Gooi en Vechtstreek) joined Amsterdam (Amsterdam-Amstelland) on 2022-03-24.
            ("GM0457", "2022-03-23", "Weesp", "VR14", "GM0363"),
            ("GM0457", "2022-03-24", UNKNOWN, UNKNOWN, "GM0363"),
            ("GM0363", "2022-03-24", "Amsterdam", "VR13", "GM0363"),
            // Unchanged municipality, and before the table's coverage.
            ("GM0014", "2024-07-01", "Groningen", "VR01", "GM0014"),
            ("GM0014", "2021-12-31", UNKNOWN, UNKNOWN, "GM0014"),
            // Not a municipality at all.
            ("GM9999", "2024-07-01", UNKNOWN, UNKNOWN, "GM9999"),
        ];
        for (code, day, name, region, current) in cases {
            let g = e.geography(code, date(day), date("2026-12-02"));
            assert_eq!(
                (
                    g.municipality_name.as_str(),
                    g.region_code.as_str(),
                    g.municipality_code_current.as_str()
                ),
                (name, region, current),
                "{code} on {day}"
            );
        }
        let g = e.geography("GM0935", date("2024-01-01"), date("2026-12-02"));
        assert_eq!(
            (
                g.region_name.as_str(),
                g.province_code.as_str(),
                g.province_name.as_str()
            ),
            ("Zuid-Limburg", "PV31", "Limburg")
        );
    }

    #[test]
    fn local_date_is_amsterdam_time() {
        // 2022-12-31T23:30:00Z is already 2023-01-01 in Amsterdam (CET, UTC+1).
        assert_eq!(local_date(1_672_529_400_000), date("2023-01-01"));
        // 2024-07-01T21:59:00Z is 23:59 CEST.
        assert_eq!(local_date(1_719_871_140_000), date("2024-07-01"));
    }

    #[test]
    fn stations_normalise_by_name_alias_and_date() {
        let e = enricher();
        let cases = [
            ("Amsterdam", "Amsterdam"),
            ("MMT Rotterdam", "Rotterdam"),
            ("lifeliner 3", "Volkel"),
            ("MMT Groningen", "Eelde"),
            ("Teuge", UNKNOWN),
            ("", UNKNOWN),
        ];
        for (raw, want) in cases {
            assert_eq!(e.station(raw, date("2024-05-01")), want, "{raw:?}");
        }
        assert_eq!(
            e.station("Eelde", date("1999-12-31")),
            UNKNOWN,
            "before the station opened"
        );
    }

    fn event(payload: Payload, at_ms: i64) -> DispatchEvent {
        DispatchEvent {
            envelope: Envelope {
                event_id: Uuid::from_u128(5),
                incident_id: "INC-1".into(),
                dispatch_centre: "MKA Noord-Nederland".into(),
                occurred_at_ms: at_ms,
            },
            payload,
        }
    }

    fn meta(p: &SourcePosition) -> Meta<'_> {
        Meta {
            position: p,
            format: WireFormat::Avro,
            schema_id: Some(3),
            ingested_at: 1_800_000_000,
        }
    }

    fn pos() -> SourcePosition {
        SourcePosition {
            topic: "dispatch.calls".into(),
            partition: 2,
            offset: 41,
        }
    }

    /// A call from Hellevoetsluis (GM0530, part of Voorne aan Zee, GM1992, since 2023-01-01).
    fn hellevoetsluis_call() -> DispatchEvent {
        event(
            Payload::Call {
                urgency: Urgency::B,
                municipality_code: "GM0530".into(),
                patient_age_years: Some(7),
                triage_code: Some("BURN".into()),
            },
            1_656_000_000_000, // 2022-06-23
        )
    }

    #[test]
    fn call_row_carries_event_fields_enrichment_and_metadata() {
        let e = enricher();
        let p = pos();
        let ev = hellevoetsluis_call();
        let row = to_row(&ev, &meta(&p), &e);
        assert_eq!(row.event_type, "call");
        assert_eq!(row.occurred_at, 1_656_000_000);
        assert_eq!(row.urgency.as_deref(), Some("B"));
        assert_eq!(row.urgency_vui.as_deref(), Some("B2"));
        assert_eq!(
            (
                row.urgency_rank,
                row.is_emergency,
                row.response_norm_seconds
            ),
            (Some(5), Some(0), None)
        );
        assert_eq!(row.municipality_name.as_deref(), Some("Hellevoetsluis"));
        assert_eq!(row.region_code.as_deref(), Some("VR17"));
        assert_eq!(row.province_name.as_deref(), Some("Zuid-Holland"));
        assert_eq!(row.municipality_code_current.as_deref(), Some("GM1992"));
        assert_eq!(
            (row.is_child, row.is_trauma, row.trauma_source.as_deref()),
            (Some(1), Some(1), Some("triage_code"))
        );
        assert_eq!(
            (row.source_partition, row.source_offset, row.schema_id),
            (2, 41, Some(3))
        );
        assert_eq!(row.unit_id, None);
    }

    /// The current municipality code follows the ingest time in `Meta`, not the machine's
    /// clock.
    #[test]
    fn the_ingest_time_in_meta_is_the_clock_of_the_current_code() {
        let e = enricher();
        let p = pos();
        let ev = hellevoetsluis_call();
        let at = |ingested_at: u32| Meta {
            ingested_at,
            ..meta(&p)
        };
        let before = to_row(&ev, &at(1_672_480_000), &e); // 2022-12-31 09:46 UTC
        let after = to_row(&ev, &at(1_672_617_600), &e); // 2023-01-02 00:00 UTC
        assert_eq!(before.municipality_code_current.as_deref(), Some("GM0530"));
        assert_eq!(after.municipality_code_current.as_deref(), Some("GM1992"));
        assert_eq!(to_row(&ev, &at(1_672_480_000), &e), before);
    }

    #[test]
    fn non_call_rows_leave_call_attributes_null() {
        let e = enricher();
        let p = pos();
        let at = 1_719_871_140_000;
        let alert = to_row(
            &event(
                Payload::Alert {
                    unit_id: "MMT-1".into(),
                    unit_type: UnitType::MmtHelicopter,
                    mmt_station: Some("Lifeliner 2".into()),
                    dispatch_kind: DispatchKind::Secondary,
                    urgency: None,
                },
                at,
            ),
            &meta(&p),
            &e,
        );
        assert_eq!(alert.mmt_station_norm.as_deref(), Some("Rotterdam"));
        assert_eq!(
            (
                alert.urgency_vui.as_deref(),
                alert.region_code.as_deref(),
                alert.is_child
            ),
            (None, None, None)
        );
        let transport = to_row(
            &event(
                Payload::Transport {
                    unit_id: "AMB-1".into(),
                    mode: TransportMode::Helicopter,
                    mmt_physician_accompanies: true,
                    destination: None,
                    patient_age_years: None,
                    trauma: None,
                },
                at,
            ),
            &meta(&p),
            &e,
        );
        assert_eq!(
            (
                transport.is_trauma,
                transport.is_child,
                transport.trauma_source
            ),
            (None, None, None)
        );
        assert_eq!(transport.mmt_physician_accompanies, Some(1));
        let cancel = to_row(
            &event(
                Payload::Cancel {
                    unit_id: "MMT-1".into(),
                    cancel_reason: CancelReason::Weather,
                },
                at,
            ),
            &meta(&p),
            &e,
        );
        assert_eq!(cancel.cancel_reason.as_deref(), Some("WEATHER"));
        assert_eq!(cancel.event_type, "cancel");
    }
}
