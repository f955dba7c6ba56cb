//! A calibrated MMT stream for one year: every MMT call (oproep) is an incident with its 112 call,
//! the ambulance, the MMT alert, and either a cancel or the team on scene and the transport.
//! Counts are exact, not sampled: the year's totals and shares come from the MMT factsheet
//! 2023-2024 (`shared/seeds/000_*.txt`), apportioned to integers, and then assigned to calls by a
//! seeded shuffle. So the rollups reproduce the factsheet's figures to the printed decimal.
//!
//! Assumptions where the factsheet gives no number (documented in docs/rollups.md): monthly
//! seasonality, the split over stations, the cancel-reason distribution, and ages and triage codes
//! of cancelled calls.

use chrono::{Datelike, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::{ambulance_alert, on_scene, uuid};
use crate::enrich::reference::Reference;
use crate::event::{CancelReason, DispatchEvent, Envelope, Payload, TransportMode, Urgency};

/// The factsheet's figures for one year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmtYear {
    /// Calendar year.
    pub year: i32,
    /// MMT calls (oproepen).
    pub calls: u32,
    /// Calls that became a deployment (inzet): not cancelled before giving care.
    pub deployments: u32,
    /// Share of calls done by helicopter (the rest by car), percent as printed.
    pub helicopter_pct: f64,
    /// Share of calls alerted by the dispatcher on the 112 call (the rest: crew request).
    pub primary_pct: f64,
    /// Of deployments: trauma-related.
    pub trauma_pct: f64,
    /// Of deployments: patient 18 or younger.
    pub child_pct: f64,
    /// Of deployments: patient flown to hospital under the MMT physician.
    pub helicopter_transport_pct: f64,
}

/// MMT factsheet 2023-2024: 15,273 and 14,803 calls; 6,388 and 5,998 deployments; helicopter 71%
/// and 77% of calls; primary 92%; trauma 53.6% and 53.5%, child 19.6% and 17.4%, helicopter
/// transport 3.1% and 2.1% of deployments.
pub const FACTSHEET: [MmtYear; 2] = [
    MmtYear {
        year: 2023,
        calls: 15_273,
        deployments: 6_388,
        helicopter_pct: 71.0,
        primary_pct: 92.0,
        trauma_pct: 53.6,
        child_pct: 19.6,
        helicopter_transport_pct: 3.1,
    },
    MmtYear {
        year: 2024,
        calls: 14_803,
        deployments: 5_998,
        helicopter_pct: 77.0,
        primary_pct: 92.0,
        trauma_pct: 53.5,
        child_pct: 17.4,
        helicopter_transport_pct: 2.1,
    },
];

/// The factsheet's figures for `year` (2023 or 2024); `None` for other years.
pub fn factsheet_year(year: i32) -> Option<MmtYear> {
    FACTSHEET.iter().copied().find(|y| y.year == year)
}

/// Relative call volume per month (January first): somewhat more in summer (assumption).
pub const MONTH_WEIGHTS: [f64; 12] = [
    0.94, 0.87, 0.95, 0.98, 1.05, 1.08, 1.12, 1.10, 1.02, 0.98, 0.95, 0.96,
];

/// A station, its share of calls (assumption), and the safety regions of its incidents.
pub type StationSpec = (&'static str, f64, &'static [&'static str]);

/// The four MMT stations with their share of calls and the safety regions they serve.
pub const STATIONS: [StationSpec; 4] = [
    (
        "Amsterdam",
        0.30,
        &["VR09", "VR10", "VR11", "VR12", "VR13", "VR14", "VR25"],
    ),
    ("Rotterdam", 0.28, &["VR15", "VR16", "VR17", "VR18", "VR19"]),
    (
        "Volkel",
        0.24,
        &["VR07", "VR08", "VR20", "VR21", "VR22", "VR23", "VR24"],
    ),
    (
        "Eelde",
        0.18,
        &["VR01", "VR02", "VR03", "VR04", "VR05", "VR06"],
    ),
];

/// Cancel reasons and their shares (assumption; the factsheet names the most common one).
pub const CANCEL_REASONS: [(CancelReason, f64); 7] = [
    (CancelReason::AmbulanceAssessedNotNeeded, 0.55),
    (CancelReason::NoPatientOrMinorInjury, 0.15),
    (CancelReason::PatientDeceased, 0.12),
    (CancelReason::MmtUnavailable, 0.06),
    (CancelReason::Weather, 0.05),
    (CancelReason::DispatchError, 0.03),
    (CancelReason::Other, 0.04),
];

const TRAUMA_CODES: [&str; 5] = [
    "TRAUMA-HIGH-ENERGY",
    "TRAUMA-PENETRATING",
    "TRAUMA-HEAD-NECK",
    "TRAUMA-OTHER",
    "BURN",
];
const MEDICAL_CODES: [&str; 6] = [
    "CARDIAC-ARREST",
    "STROKE",
    "BREATHING",
    "UNCONSCIOUS",
    "SEIZURE",
    "INTOXICATION",
];

/// Integer counts proportional to `weights` that sum to exactly `total` (largest remainder).
pub fn apportion(total: u32, weights: &[f64]) -> Vec<u32> {
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut out: Vec<u32> = exact.iter().map(|x| x.floor() as u32).collect();
    let mut rest = total - out.iter().sum::<u32>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| {
        let fa = exact[*a] - exact[*a].floor();
        let fb = exact[*b] - exact[*b].floor();
        fb.partial_cmp(&fa).unwrap_or(std::cmp::Ordering::Equal)
    });
    for i in order {
        if rest == 0 {
            break;
        }
        out[i] += 1;
        rest -= 1;
    }
    out
}

/// `pct` percent of `n`, rounded to the nearest whole call.
pub fn share(n: u32, pct: f64) -> u32 {
    (n as f64 * pct / 100.0).round() as u32
}

/// A vector of `n` flags with exactly `k` set, shuffled.
fn flags(n: u32, k: u32, rng: &mut StdRng) -> Vec<bool> {
    let mut v: Vec<bool> = (0..n).map(|i| i < k).collect();
    v.shuffle(rng);
    v
}

/// `counts[i]` copies of `values[i]`, shuffled.
fn spread<T: Clone>(values: &[T], counts: &[u32], rng: &mut StdRng) -> Vec<T> {
    let mut v: Vec<T> = values
        .iter()
        .zip(counts)
        .flat_map(|(x, k)| std::iter::repeat_n(x.clone(), *k as usize))
        .collect();
    v.shuffle(rng);
    v
}

/// The events of one year's MMT calls, in time order.
pub fn mmt_year(spec: &MmtYear, seed: u64, reference: &Reference) -> Vec<DispatchEvent> {
    let mut rng = StdRng::seed_from_u64(seed ^ ((spec.year as u64) << 32));
    let n = spec.calls;
    let deployed = flags(n, spec.deployments, &mut rng);
    let helicopter = flags(n, share(n, spec.helicopter_pct), &mut rng);
    let primary = flags(n, share(n, spec.primary_pct), &mut rng);
    // Shares "of deployments" are assigned among the deployments only.
    let d = spec.deployments;
    let trauma_d = flags(d, share(d, spec.trauma_pct), &mut rng);
    let child_d = flags(d, share(d, spec.child_pct), &mut rng);
    let heli_transport_d = flags(d, share(d, spec.helicopter_transport_pct), &mut rng);
    let month_numbers: Vec<u32> = (1..=12).collect();
    let months = spread(&month_numbers, &apportion(n, &MONTH_WEIGHTS), &mut rng);
    let station_weights: Vec<f64> = STATIONS.iter().map(|s| s.1).collect();
    let station_index: Vec<usize> = (0..STATIONS.len()).collect();
    let stations = spread(&station_index, &apportion(n, &station_weights), &mut rng);
    let reason_weights: Vec<f64> = CANCEL_REASONS.iter().map(|r| r.1).collect();
    let reason_names: Vec<CancelReason> = CANCEL_REASONS.iter().map(|r| r.0).collect();
    let reasons = spread(&reason_names, &apportion(n - d, &reason_weights), &mut rng);
    // Municipalities of each station's regions, valid in that year.
    let mid_year = NaiveDate::from_ymd_opt(spec.year, 7, 1).expect("date");
    let mut codes: Vec<&String> = reference.municipalities.keys().collect();
    codes.sort();
    let places: Vec<Vec<String>> = STATIONS
        .iter()
        .map(|(_, _, regions)| {
            codes
                .iter()
                .filter(|c| {
                    reference
                        .municipality_on(c, mid_year)
                        .is_some_and(|(_, r)| regions.contains(&r.code.as_str()))
                })
                .map(|c| (*c).clone())
                .collect()
        })
        .collect();

    let mut events = Vec::with_capacity(n as usize * 6);
    let mut d_index = 0usize;
    let mut r_index = 0usize;
    for i in 0..n as usize {
        let first = NaiveDate::from_ymd_opt(spec.year, months[i], 1).expect("date");
        let days = first
            .checked_add_months(chrono::Months::new(1))
            .expect("date")
            .signed_duration_since(first)
            .num_days() as u32;
        // Local time of the call; before 23:00 so that the MMT alert (at most about 40 minutes
        // later) stays in the same month and year.
        let local = first
            .with_day(rng.random_range(1..=days))
            .expect("day")
            .and_hms_opt(
                rng.random_range(0..23),
                rng.random_range(0..60),
                rng.random_range(0..60),
            )
            .expect("time");
        let t0 = super::amsterdam_ms(local);
        let incident = format!("MMT-{}-{seed}-{i:06}", spec.year);
        let env = |rng: &mut StdRng, at: i64| Envelope {
            event_id: uuid(rng),
            incident_id: incident.clone(),
            dispatch_centre: "MKA".to_string(),
            occurred_at_ms: at,
        };
        let station = stations[i];
        let station_places = &places[station];
        let municipality = station_places[rng.random_range(0..station_places.len())].clone();
        let is_deployment = deployed[i];
        let (trauma, child, heli_transport) = if is_deployment {
            let k = d_index;
            d_index += 1;
            (trauma_d[k], child_d[k], heli_transport_d[k])
        } else {
            (rng.random_bool(0.5), rng.random_bool(0.15), false)
        };
        let age = if child {
            Some(rng.random_range(0..=18))
        } else if rng.random_bool(0.9) {
            Some(rng.random_range(19..=95))
        } else {
            None
        };
        let triage = if trauma {
            TRAUMA_CODES[rng.random_range(0..TRAUMA_CODES.len())]
        } else {
            MEDICAL_CODES[rng.random_range(0..MEDICAL_CODES.len())]
        };
        let urgency = if rng.random_bool(0.2) {
            Urgency::A0
        } else {
            Urgency::A1
        };
        events.push(DispatchEvent {
            envelope: env(&mut rng, t0),
            payload: Payload::Call {
                urgency,
                municipality_code: municipality,
                patient_age_years: age,
                triage_code: Some(triage.into()),
            },
        });
        let amb = format!("AMB-{i:06}");
        let amb_alert = t0 + rng.random_range(30_000..90_000);
        let amb_on_scene = amb_alert + rng.random_range(300_000..900_000);
        events.push(DispatchEvent {
            envelope: env(&mut rng, amb_alert),
            payload: ambulance_alert(&amb, urgency),
        });
        events.push(DispatchEvent {
            envelope: env(&mut rng, amb_on_scene),
            payload: on_scene(&amb),
        });
        let heli = helicopter[i];
        let station_name = STATIONS[station].0;
        let mmt = format!("MMT-{station_name}-{}", if heli { "H" } else { "C" });
        let mmt_alert = if primary[i] {
            t0 + rng.random_range(60_000..180_000)
        } else {
            amb_on_scene + rng.random_range(120_000..600_000)
        };
        events.push(DispatchEvent {
            envelope: env(&mut rng, mmt_alert),
            payload: super::mmt_alert(&mmt, heli, station_name, primary[i], urgency),
        });
        if is_deployment {
            let mmt_on_scene = mmt_alert + rng.random_range(600_000..1_500_000);
            events.push(DispatchEvent {
                envelope: env(&mut rng, mmt_on_scene),
                payload: on_scene(&mmt),
            });
            let leave = mmt_on_scene + rng.random_range(900_000..2_400_000);
            let (unit, mode, physician) = if heli_transport {
                (mmt.clone(), TransportMode::Helicopter, true)
            } else {
                (amb.clone(), TransportMode::Ambulance, rng.random_bool(0.55))
            };
            events.push(DispatchEvent {
                envelope: env(&mut rng, leave),
                payload: Payload::Transport {
                    unit_id: unit,
                    mode,
                    mmt_physician_accompanies: physician,
                    destination: None,
                    patient_age_years: age,
                    trauma: None,
                },
            });
        } else {
            let reason = reasons[r_index];
            r_index += 1;
            let at = mmt_alert + rng.random_range(120_000..1_200_000);
            events.push(DispatchEvent {
                envelope: env(&mut rng, at),
                payload: Payload::Cancel {
                    unit_id: mmt,
                    cancel_reason: reason,
                },
            });
        }
    }
    events.sort_by_key(|e| e.envelope.occurred_at_ms);
    events
}

/// Delivery noise for a generated stream, deterministic for a seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noise {
    /// Fraction of events sent twice.
    pub duplicates: f64,
    /// Events are shuffled within windows of this many (0: in time order).
    pub shuffle_window: usize,
    /// Fraction of events held back and sent after all others (hours late).
    pub late: f64,
}

/// Apply `noise` to a time-ordered stream.
pub fn with_noise(mut events: Vec<DispatchEvent>, noise: Noise, seed: u64) -> Vec<DispatchEvent> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(0x5eed));
    if noise.duplicates > 0.0 {
        let p = noise.duplicates.min(1.0);
        let extra: Vec<DispatchEvent> = events
            .iter()
            .filter(|_| rng.random_bool(p))
            .cloned()
            .collect();
        events.extend(extra);
        events.sort_by_key(|e| e.envelope.occurred_at_ms);
    }
    let mut late = Vec::new();
    if noise.late > 0.0 {
        let p = noise.late.min(1.0);
        let (keep, held): (Vec<_>, Vec<_>) = events.into_iter().partition(|_| !rng.random_bool(p));
        events = keep;
        late = held;
    }
    if noise.shuffle_window > 1 {
        for chunk in events.chunks_mut(noise.shuffle_window) {
            chunk.shuffle(&mut rng);
        }
    }
    events.extend(late);
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DispatchKind, UnitType};
    use std::collections::HashSet;

    use crate::generate::shipped_reference as reference;

    #[test]
    fn apportion_is_exact_and_proportional() {
        assert_eq!(apportion(10, &[1.0, 1.0, 1.0]).iter().sum::<u32>(), 10);
        assert_eq!(apportion(100, &[0.5, 0.25, 0.25]), vec![50, 25, 25]);
        let months = apportion(15_273, &MONTH_WEIGHTS);
        assert_eq!(months.iter().sum::<u32>(), 15_273);
        assert!(months[6] > months[1], "July busier than February");
    }

    #[test]
    fn the_generated_year_has_the_factsheet_counts() {
        let r = reference();
        for spec in FACTSHEET {
            let events = mmt_year(&spec, 42, &r);
            let mut mmt_alerts = 0u32;
            let mut heli = 0u32;
            let mut primary = 0u32;
            let mut cancelled = HashSet::new();
            let mut heli_transport = 0u32;
            for e in &events {
                match &e.payload {
                    Payload::Alert {
                        unit_type,
                        dispatch_kind,
                        ..
                    } if unit_type.is_mmt() => {
                        mmt_alerts += 1;
                        heli += u32::from(*unit_type == UnitType::MmtHelicopter);
                        primary += u32::from(*dispatch_kind == DispatchKind::Primary);
                        let local = crate::enrich::local_date(e.envelope.occurred_at_ms);
                        assert_eq!(local.year(), spec.year, "alert inside its year");
                    }
                    Payload::Cancel { .. } => {
                        cancelled.insert(e.envelope.incident_id.clone());
                    }
                    Payload::Transport {
                        mode,
                        mmt_physician_accompanies,
                        ..
                    } => {
                        heli_transport += u32::from(
                            *mode == TransportMode::Helicopter && *mmt_physician_accompanies,
                        );
                    }
                    _ => {}
                }
            }
            assert_eq!(mmt_alerts, spec.calls);
            assert_eq!(spec.calls - cancelled.len() as u32, spec.deployments);
            assert_eq!(
                (100.0 * heli as f64 / spec.calls as f64).round(),
                spec.helicopter_pct
            );
            assert_eq!(
                (100.0 * primary as f64 / spec.calls as f64).round(),
                spec.primary_pct
            );
            let pct1 = |k: u32| (1000.0 * k as f64 / spec.deployments as f64).round() / 10.0;
            assert_eq!(pct1(heli_transport), spec.helicopter_transport_pct);
            // Deterministic for a seed.
            assert_eq!(events, mmt_year(&spec, 42, &r));
        }
    }

    #[test]
    fn noise_duplicates_reorders_and_delays_but_keeps_every_event() {
        let events = mmt_year(&FACTSHEET[0], 1, &reference());
        let noisy = with_noise(
            events.clone(),
            Noise {
                duplicates: 0.02,
                shuffle_window: 500,
                late: 0.01,
            },
            9,
        );
        assert!(noisy.len() > events.len());
        let ids: HashSet<_> = noisy.iter().map(|e| e.envelope.event_id).collect();
        assert_eq!(ids.len(), events.len());
        let in_order = noisy
            .windows(2)
            .filter(|w| w[0].envelope.occurred_at_ms <= w[1].envelope.occurred_at_ms)
            .count();
        assert!(in_order < noisy.len() - 1, "reordered");
    }
}
