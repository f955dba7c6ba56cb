//! A calibrated national ambulance stream for 2023-2026 (2024 exact to the Kamerbrief), generated
//! day by day so a full year (about 1.48 million deployments, 5.5 million events) streams in
//! bounded memory.
//!
//! Calibration (Kamerbrief acute zorg, September 2025, `shared/seeds/002_*.txt`, and its appendix):
//! 1,484,107 ambulance deployments in 2024, of which 417,204 mobile care consults (no transport);
//! 725,739 A0+A1 deployments, of which 22,124 A0; 64,720 rapid-responder deployments; mean response
//! A1 about 10:13 and A0 1:39 faster (8:35); 95% of A1 within 16:51; slower in rural regions.
//! Counts are exact (apportioned over days); response times are drawn from a log-normal
//! distribution per urgency with those means and, for A1, that 95th percentile, scaled per safety
//! region (rural regions slower, urban faster, volume-weighted to keep the national mean).
//!
//! Assumptions (docs/rollups.md): the split of the remaining 758,368 deployments over A2, B1 and
//! B2 (60/10/30%), the A2 mean (20 minutes), the regional factors, and seasonality.

use chrono::{Datelike, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};

use super::mmt::apportion;
use super::{alert, on_scene};
use crate::enrich::reference::Reference;
use crate::event::{
    CancelReason, DispatchEvent, DispatchKind, Envelope, Payload, TransportMode, UnitType, Urgency,
};

/// National figures for 2024.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NationalYear {
    /// Calendar year.
    pub year: i32,
    /// Ambulance deployments (inzetten) of the year, mobile care consults included.
    pub deployments: u64,
    /// Deployments that were a mobile care consult (no transport).
    pub mobile_care_consults: u64,
    /// A0 deployments.
    pub a0: u64,
    /// A1 deployments (A0 not included).
    pub a1: u64,
    /// Deployments of a rapid responder.
    pub rapid_responder: u64,
}

/// 2024 as the Kamerbrief acute zorg (September 2025) states it: 1,484,107 deployments, 417,204 consults, 725,739 A0+A1 of which 22,124 A0, 64,720 rapid-responder deployments.
pub const NATIONAL_2024: NationalYear = NationalYear {
    year: 2024,
    deployments: 1_484_107,
    mobile_care_consults: 417_204,
    a0: 22_124,
    a1: 725_739 - 22_124,
    rapid_responder: 64_720,
};

/// Urgencies of the deployments: A0, A1 from the figures; the rest split 60/10/30 over A2, B1, B2.
pub const OTHER_SPLIT: [(Urgency, f64); 3] =
    [(Urgency::A2, 0.6), (Urgency::B1, 0.1), (Urgency::B2, 0.3)];

/// Mean response seconds (call accepted -> first ambulance on scene).
pub const MEAN_A0: f64 = 515.0; // 8:35
/// Mean A1 response in seconds (10:13).
pub const MEAN_A1: f64 = 613.0; // 10:13
/// 95th percentile of the A1 response in seconds (16:51).
pub const P95_A1: f64 = 1011.0; // 16:51
/// Mean A2 response in seconds (20 minutes; an assumption).
pub const MEAN_A2: f64 = 1200.0; // assumption

/// The figures of a year 2023-2026: 2024 as the Kamerbrief states; the other years scaled by an
/// assumed volume trend (2023 -3%, 2025 +2%, 2026 +4%) with the same shares.
pub fn national_year(year: i32) -> Option<NationalYear> {
    let factor = match year {
        2023 => 0.97,
        2024 => return Some(NATIONAL_2024),
        2025 => 1.02,
        2026 => 1.04,
        _ => return None,
    };
    Some(NationalYear {
        year,
        ..scaled(&NATIONAL_2024, factor)
    })
}

/// Inhabitants per municipality (CBS 2021 in the 2023-2025 layout, `config/reference/inhabitants.csv`),
/// the weights of incident locations.
pub const INHABITANTS_CSV: &str = include_str!("../../config/reference/inhabitants.csv");

/// `(code, inhabitants)` from [`INHABITANTS_CSV`].
pub fn inhabitants() -> Vec<(String, u64)> {
    let mut rdr = csv::Reader::from_reader(INHABITANTS_CSV.as_bytes());
    rdr.records()
        .map(|r| {
            let r = r.expect("shipped inhabitants.csv parses");
            (
                r[0].to_string(),
                r[2].parse()
                    .expect("shipped inhabitants.csv: inwoners is a number"),
            )
        })
        .collect()
}

/// Rurality by size: municipalities under 25,000 inhabitants are slower, over 150,000 faster.
pub const SMALL_MUNICIPALITY: u64 = 25_000;
/// Municipalities over this many inhabitants respond faster.
pub const LARGE_MUNICIPALITY: u64 = 150_000;
/// Response-time factor of a municipality under [`SMALL_MUNICIPALITY`] inhabitants (x1.1).
pub const SMALL_FACTOR: f64 = 1.1;
/// Response-time factor of a municipality over [`LARGE_MUNICIPALITY`] inhabitants (x0.92).
pub const LARGE_FACTOR: f64 = 0.92;

/// Shares of A0/A1 incidents with a particular course (assumptions).
pub const SECOND_AMBULANCE: f64 = 0.05;
/// Share of A0/A1 incidents for which an MMT helicopter is alerted too (3%).
pub const MMT_ALERTED: f64 = 0.03;
/// Share of A0/A1 mobile care consults that end without any arrival (2%).
pub const NO_ARRIVAL: f64 = 0.02;
/// Share of A0/A1 incidents whose arrival precedes the call, a clock error (0.1%).
pub const ARRIVAL_BEFORE_CALL: f64 = 0.001;
/// Share of A0/A1 incidents whose arrival is 3-4 hours late, a status error (0.05%).
pub const HOURS_LATE: f64 = 0.0005;

/// Safety regions that are mostly rural (slower) and mostly urban (faster); others are neutral.
pub const RURAL: [&str; 8] = [
    "VR01", "VR02", "VR03", "VR05", "VR06", "VR19", "VR23", "VR24",
];
/// Mostly urban safety regions (faster).
pub const URBAN: [&str; 5] = ["VR13", "VR15", "VR17", "VR09", "VR12"];
/// Response-time factor of a rural safety region (x1.15).
pub const RURAL_FACTOR: f64 = 1.15;
/// Response-time factor of an urban safety region (x0.9).
pub const URBAN_FACTOR: f64 = 0.9;

/// The log-normal sigma that gives A1 its mean and 95th percentile.
pub fn a1_sigma() -> f64 {
    // ln(p95) - ln(mean) = 1.645 s - s^2/2, the smaller root.
    let d = (P95_A1 / MEAN_A1).ln();
    1.645 - (1.645f64 * 1.645 - 2.0 * d).sqrt()
}

/// The sigma for which the mixture of log-normals (mean `MEAN_A1`, scaled by each municipality's
/// factor, weighted by its share of incidents) has its 95th percentile at `P95_A1`: the spread
/// of the factors widens the national distribution, so each municipality's is narrower.
fn mixture_sigma(mix: &[(f64, f64)]) -> f64 {
    let cdf_at_p95 = |s: f64| -> f64 {
        let mu = MEAN_A1.ln() - s * s / 2.0;
        mix.iter()
            .map(|(f, w)| w * normal_cdf(((P95_A1 / f).ln() - mu) / s))
            .sum()
    };
    // The CDF at the target falls as sigma grows (over this range): bisect.
    let (mut lo, mut hi) = (0.05, a1_sigma());
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if cdf_at_p95(mid) > 0.95 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// The standard normal CDF.
fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))
}

/// The scaled targets: counts multiplied by `scale` and rounded.
pub fn scaled(spec: &NationalYear, scale: f64) -> NationalYear {
    let s = |v: u64| (v as f64 * scale).round() as u64;
    NationalYear {
        year: spec.year,
        deployments: s(spec.deployments),
        mobile_care_consults: s(spec.mobile_care_consults),
        a0: s(spec.a0),
        a1: s(spec.a1),
        rapid_responder: s(spec.rapid_responder),
    }
}

/// A municipality as the generator uses it.
#[derive(Debug, Clone)]
struct Place {
    code: String,
    /// Response-time factor (region and rurality, normalised).
    factor: f64,
    /// The dispatch centre (meldkamer) of its safety region.
    centre: String,
}

/// Per-day generation plan, so a year can be produced in chunks.
pub struct Plan {
    /// The year's figures the plan apportions over its days.
    pub spec: NationalYear,
    seed: u64,
    days: Vec<NaiveDate>,
    /// Per day: deployments per urgency (A0, A1, A2, B1, B2), consults, rapid responders.
    per_day: Vec<[u64; 7]>,
    places: Vec<Place>,
    weights: rand::distr::weighted::WeightedIndex<u64>,
    /// Log-normal sigma such that the mixture over municipalities keeps the A1 95th percentile.
    sigma: f64,
}

/// The urgencies deployments are generated with, in apportioning order.
pub const URGENCIES: [Urgency; 5] = [
    Urgency::A0,
    Urgency::A1,
    Urgency::A2,
    Urgency::B1,
    Urgency::B2,
];

impl Plan {
    /// A plan for `spec`'s year: incidents placed in today's municipalities by inhabitants, days weighted by season and weekday, reproducible from `seed`.
    pub fn new(spec: NationalYear, seed: u64, reference: &Reference) -> Plan {
        let first = NaiveDate::from_ymd_opt(spec.year, 1, 1).expect("date");
        let days: Vec<NaiveDate> = first
            .iter_days()
            .take_while(|d| d.year() == spec.year)
            .collect();
        // Busier in winter and on Fridays/Saturdays, mildly (assumption).
        let weights: Vec<f64> = days
            .iter()
            .map(|d| {
                let season =
                    1.0 + 0.06 * ((d.ordinal() as f64 / 366.0) * std::f64::consts::TAU).cos();
                let weekday = match d.weekday() {
                    chrono::Weekday::Fri | chrono::Weekday::Sat => 1.05,
                    chrono::Weekday::Sun => 0.97,
                    _ => 1.0,
                };
                season * weekday
            })
            .collect();
        let other = spec.deployments - spec.a0 - spec.a1;
        let other_counts = apportion(
            other as u32,
            &OTHER_SPLIT.iter().map(|o| o.1).collect::<Vec<_>>(),
        );
        let totals = [
            spec.a0,
            spec.a1,
            u64::from(other_counts[0]),
            u64::from(other_counts[1]),
            u64::from(other_counts[2]),
            spec.mobile_care_consults,
            spec.rapid_responder,
        ];
        let mut per_day = vec![[0u64; 7]; days.len()];
        for (k, total) in totals.iter().enumerate() {
            for (d, v) in apportion(*total as u32, &weights).into_iter().enumerate() {
                per_day[d][k] = u64::from(v);
            }
        }
        // Incident locations: today's municipalities (valid in the middle of the year), weighted
        // by inhabitants.
        let date = NaiveDate::from_ymd_opt(spec.year, 7, 1).expect("date");
        let people: std::collections::HashMap<String, u64> = inhabitants().into_iter().collect();
        let mut places: Vec<(Place, u64)> = reference
            .municipalities
            .keys()
            .filter_map(|c| {
                let (_, r) = reference.municipality_on(c, date)?;
                let inhabitants = *people.get(c)?;
                let region = if RURAL.contains(&r.code.as_str()) {
                    RURAL_FACTOR
                } else if URBAN.contains(&r.code.as_str()) {
                    URBAN_FACTOR
                } else {
                    1.0
                };
                let size = if inhabitants < SMALL_MUNICIPALITY {
                    SMALL_FACTOR
                } else if inhabitants > LARGE_MUNICIPALITY {
                    LARGE_FACTOR
                } else {
                    1.0
                };
                Some((
                    Place {
                        code: c.clone(),
                        factor: region * size,
                        centre: format!("MKA {}", r.name),
                    },
                    inhabitants,
                ))
            })
            .collect();
        places.sort_by(|a, b| a.0.code.cmp(&b.0.code));
        // Normalise the factors so the volume-weighted mean is 1 (keeps the national means).
        let people_total: u64 = places.iter().map(|p| p.1).sum();
        let mean: f64 = places.iter().map(|p| p.0.factor * p.1 as f64).sum::<f64>()
            / people_total.max(1) as f64;
        for p in places.iter_mut() {
            p.0.factor /= mean;
        }
        let weights = rand::distr::weighted::WeightedIndex::new(places.iter().map(|p| p.1))
            .expect("municipalities with inhabitants");
        let mix: Vec<(f64, f64)> = places
            .iter()
            .map(|p| (p.0.factor, p.1 as f64 / people_total.max(1) as f64))
            .collect();
        let sigma = mixture_sigma(&mix);
        Plan {
            spec,
            seed,
            days,
            per_day,
            places: places.into_iter().map(|p| p.0).collect(),
            weights,
            sigma,
        }
    }

    /// Days in the year (365 or 366).
    pub fn days(&self) -> usize {
        self.days.len()
    }

    /// The events of day `i` (0-based), in time order.
    pub fn day(&self, i: usize) -> Vec<DispatchEvent> {
        let mut rng = StdRng::seed_from_u64(self.seed ^ ((i as u64 + 1) << 20) ^ 0x6e61_7469);
        let date = self.days[i];
        let counts = self.per_day[i];
        let sigma = self.sigma;
        let lognormal = |mean: f64| {
            LogNormal::new(mean.ln() - sigma * sigma / 2.0, sigma).expect("valid log-normal")
        };
        let dists = [lognormal(MEAN_A0), lognormal(MEAN_A1), lognormal(MEAN_A2)];
        let deployments: u64 = counts[..5].iter().sum();
        // Which deployments of the day end without transport (mobile care consult), and which
        // get a rapid responder as well: exactly the day's counts, chosen by a seeded shuffle.
        let mut consult = vec![false; deployments as usize];
        for c in consult.iter_mut().take(counts[5] as usize) {
            *c = true;
        }
        let mut rapid = vec![false; deployments as usize];
        for r in rapid.iter_mut().take(counts[6] as usize) {
            *r = true;
        }
        use rand::seq::SliceRandom;
        consult.shuffle(&mut rng);
        rapid.shuffle(&mut rng);
        let mut events = Vec::with_capacity(deployments as usize * 4);
        let mut k = 0usize;
        for (u, urgency) in URGENCIES.into_iter().enumerate() {
            for _ in 0..counts[u] {
                let seconds = rng.random_range(0..86_400u32);
                let local = date.and_hms_opt(0, 0, 0).expect("midnight")
                    + chrono::Duration::seconds(i64::from(seconds));
                let t0 = super::amsterdam_ms(local);
                let place = &self.places[rng.sample(&self.weights)];
                let incident = format!("NAT-{}-{}-{i:03}-{k:05}", self.spec.year, self.seed);
                let env = |rng: &mut StdRng, at: i64| Envelope {
                    event_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
                    incident_id: incident.clone(),
                    dispatch_centre: place.centre.clone(),
                    occurred_at_ms: at,
                };
                let alert = |unit: &str, unit_type: UnitType, station: Option<&str>| {
                    alert(unit, unit_type, station, DispatchKind::Primary, urgency)
                };
                let cancel = |unit: &str| Payload::Cancel {
                    unit_id: unit.to_string(),
                    cancel_reason: CancelReason::Other,
                };
                events.push(DispatchEvent {
                    envelope: env(&mut rng, t0),
                    payload: Payload::Call {
                        urgency,
                        municipality_code: place.code.clone(),
                        patient_age_years: rng.random_bool(0.92).then(|| rng.random_range(0..100)),
                        triage_code: None,
                    },
                });
                // The response time: to the first arrival of a counting unit. Planned (B) rides:
                // on scene at the agreed time, about 30-90 minutes later.
                let urgent = u < 2;
                let mut response_ms = if u < 3 {
                    (dists[u].sample(&mut rng) * place.factor * 1000.0) as i64
                } else {
                    rng.random_range(1_800_000..5_400_000)
                };
                let no_arrival = urgent && consult[k] && rng.random_bool(NO_ARRIVAL);
                if urgent && !no_arrival {
                    if rng.random_bool(ARRIVAL_BEFORE_CALL) {
                        response_ms = -rng.random_range(30_000..300_000);
                    } else if rng.random_bool(HOURS_LATE) {
                        response_ms = rng.random_range(3 * 3_600_000..4 * 3_600_000);
                    }
                }
                let unit = format!("AMB-{}", rng.random_range(1..=900));
                let alert_at = t0 + (response_ms.max(0) / 8).min(120_000);
                events.push(DispatchEvent {
                    envelope: env(&mut rng, alert_at),
                    payload: alert(&unit, UnitType::AlsAmbulance, None),
                });
                // A rapid responder alerted with the ambulance: for A0/A1 either may arrive
                // first (the first counting arrival is the response time), otherwise later.
                let rr = rapid[k].then(|| format!("RR-{}", rng.random_range(1..=120)));
                let rr_first = urgent && rr.is_some() && rng.random_bool(0.5);
                let first_at = if response_ms < 0 {
                    t0 + response_ms
                } else {
                    t0 + response_ms.max(alert_at - t0 + 1000)
                };
                let later_at = first_at + rng.random_range(60_000..600_000);
                if no_arrival {
                    let at = alert_at + rng.random_range(30_000..300_000);
                    events.push(DispatchEvent {
                        envelope: env(&mut rng, at),
                        payload: cancel(&unit),
                    });
                } else {
                    events.push(DispatchEvent {
                        envelope: env(&mut rng, if rr_first { later_at } else { first_at }),
                        payload: on_scene(&unit),
                    });
                }
                if let Some(rr) = &rr {
                    events.push(DispatchEvent {
                        envelope: env(&mut rng, alert_at + 5_000),
                        payload: alert(rr, UnitType::RapidResponder, None),
                    });
                    if no_arrival {
                        events.push(DispatchEvent {
                            envelope: env(&mut rng, alert_at + 20_000),
                            payload: cancel(rr),
                        });
                    } else if urgent {
                        events.push(DispatchEvent {
                            envelope: env(&mut rng, if rr_first { first_at } else { later_at }),
                            payload: on_scene(rr),
                        });
                    }
                }
                if urgent && !no_arrival && rng.random_bool(SECOND_AMBULANCE) {
                    // A second ambulance: arrives after the first, or is cancelled.
                    let second = format!("AMB-{}", rng.random_range(901..=999));
                    events.push(DispatchEvent {
                        envelope: env(&mut rng, alert_at + 60_000),
                        payload: alert(&second, UnitType::AlsAmbulance, None),
                    });
                    let at = later_at + rng.random_range(0..300_000);
                    events.push(DispatchEvent {
                        envelope: env(&mut rng, at),
                        payload: if rng.random_bool(0.5) {
                            on_scene(&second)
                        } else {
                            cancel(&second)
                        },
                    });
                }
                if urgent && rng.random_bool(MMT_ALERTED) {
                    // An MMT unit (never counts for the norm), sometimes first on scene.
                    let station =
                        ["Amsterdam", "Rotterdam", "Volkel", "Eelde"][rng.random_range(0..4)];
                    let mmt = format!("MMT-{station}-H");
                    events.push(DispatchEvent {
                        envelope: env(&mut rng, t0 + 60_000),
                        payload: alert(&mmt, UnitType::MmtHelicopter, Some(station)),
                    });
                    let at = t0 + 90_000 + rng.random_range(0..900_000);
                    events.push(DispatchEvent {
                        envelope: env(&mut rng, at),
                        payload: on_scene(&mmt),
                    });
                }
                if !consult[k] {
                    let leave = first_at.max(later_at) + rng.random_range(900_000..2_400_000);
                    events.push(DispatchEvent {
                        envelope: env(&mut rng, leave),
                        payload: Payload::Transport {
                            unit_id: unit,
                            mode: TransportMode::Ambulance,
                            mmt_physician_accompanies: false,
                            destination: None,
                            patient_age_years: None,
                            trauma: None,
                        },
                    });
                }
                k += 1;
            }
        }
        events.sort_by_key(|e| e.envelope.occurred_at_ms);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::generate::shipped_reference as reference;

    #[test]
    fn years_2023_to_2026_have_figures_with_the_2024_shares() {
        assert_eq!(national_year(2024), Some(NATIONAL_2024));
        assert_eq!(national_year(2022), None);
        assert_eq!(national_year(2027), None);
        for y in [2023, 2025, 2026] {
            let s = national_year(y).unwrap();
            assert_eq!(s.year, y);
            let share = s.a0 as f64 / (s.a0 + s.a1) as f64;
            assert!((share - 0.0305).abs() < 0.001, "{y}: A0 share {share}");
        }
        let people = inhabitants();
        assert_eq!(people.len(), 342);
        assert!(people.iter().any(|(c, n)| c == "GM0088" && *n < 1_000));
    }

    #[test]
    fn sigma_reproduces_mean_and_p95() {
        let s = a1_sigma();
        let mu = MEAN_A1.ln() - s * s / 2.0;
        assert!(((mu + 1.645 * s).exp() - P95_A1).abs() < 1.0);
        assert!(((mu + s * s / 2.0).exp() - MEAN_A1).abs() < 1e-6);
    }

    #[test]
    fn a_scaled_year_has_exact_counts_and_calibrated_response_times() {
        let spec = scaled(&NATIONAL_2024, 0.01);
        let plan = Plan::new(spec, 7, &reference());
        assert_eq!(plan.days(), 366);
        let mut calls = [0u64; 5];
        let mut transports = 0u64;
        let mut rapid = 0u64;
        let mut calls_at = std::collections::HashMap::new();
        let mut counting = std::collections::HashSet::new();
        let mut first: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        let mut centres = std::collections::HashSet::new();
        for d in 0..plan.days() {
            for e in plan.day(d) {
                centres.insert(e.envelope.dispatch_centre.clone());
                let id = e.envelope.incident_id.clone();
                match &e.payload {
                    Payload::Call { urgency, .. } => {
                        let u = URGENCIES.iter().position(|x| x == urgency).unwrap();
                        calls[u] += 1;
                        calls_at.insert(id, (u, e.envelope.occurred_at_ms));
                    }
                    Payload::OnScene { unit_id }
                        if counting.contains(&(id.clone(), unit_id.clone())) =>
                    {
                        let t = first.entry(id).or_insert(i64::MAX);
                        *t = (*t).min(e.envelope.occurred_at_ms);
                    }
                    Payload::Transport { .. } => transports += 1,
                    Payload::Alert {
                        unit_type, unit_id, ..
                    } => {
                        if *unit_type == UnitType::RapidResponder {
                            rapid += 1;
                        }
                        if matches!(unit_type, UnitType::RapidResponder | UnitType::AlsAmbulance) {
                            counting.insert((id, unit_id.clone()));
                        }
                    }
                    _ => {}
                }
            }
        }
        // The dispatch centre of the incident's region, not one constant.
        assert!(centres.len() > 10, "{centres:?}");
        // Response: call to the first counting arrival, plausible times only (docs/rollups.md).
        let mut response: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut excluded = 0;
        for (id, (u, t0)) in &calls_at {
            if *u >= 2 {
                continue;
            }
            match first.get(id) {
                Some(t) if *t >= *t0 && t - t0 <= 7_200_000 => {
                    response[*u].push((t - t0) as f64 / 1000.0)
                }
                _ => excluded += 1,
            }
        }
        assert!(
            excluded > 0 && excluded < (spec.a0 + spec.a1) / 20,
            "{excluded}"
        );
        assert_eq!(calls[0], spec.a0);
        assert_eq!(calls[1], spec.a1);
        assert_eq!(calls.iter().sum::<u64>(), spec.deployments);
        assert_eq!(spec.deployments - transports, spec.mobile_care_consults);
        assert_eq!(rapid, spec.rapid_responder);
        let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            (mean(&response[0]) - MEAN_A0).abs() / MEAN_A0 < 0.05,
            "A0 mean {}",
            mean(&response[0])
        );
        assert!(
            (mean(&response[1]) - MEAN_A1).abs() / MEAN_A1 < 0.03,
            "A1 mean {}",
            mean(&response[1])
        );
        let mut a1 = response[1].clone();
        a1.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let p95 = a1[(a1.len() as f64 * 0.95) as usize];
        assert!((p95 - P95_A1).abs() / P95_A1 < 0.03, "A1 p95 {p95}");
        assert!((normal_cdf(1.645) - 0.95).abs() < 1e-4);
    }
}
