//! A calibrated national ambulance stream for 2024, generated day by day so a full year (about
//! 1.48 million deployments, 5.5 million events) streams in bounded memory.
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
use crate::enrich::reference::Reference;
use crate::event::{DispatchEvent, Envelope, Payload};

/// National figures for 2024.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NationalYear {
    pub year: i32,
    pub deployments: u64,
    pub mobile_care_consults: u64,
    pub a0: u64,
    pub a1: u64,
    pub rapid_responder: u64,
}

pub const NATIONAL_2024: NationalYear = NationalYear {
    year: 2024,
    deployments: 1_484_107,
    mobile_care_consults: 417_204,
    a0: 22_124,
    a1: 725_739 - 22_124,
    rapid_responder: 64_720,
};

/// Urgencies of the deployments: A0, A1 from the figures; the rest split 60/10/30 over A2, B1, B2.
pub const OTHER_SPLIT: [(&str, f64); 3] = [("A2", 0.6), ("B1", 0.1), ("B2", 0.3)];

/// Mean response seconds (call accepted -> first ambulance on scene).
pub const MEAN_A0: f64 = 515.0; // 8:35
pub const MEAN_A1: f64 = 613.0; // 10:13
pub const P95_A1: f64 = 1011.0; // 16:51
pub const MEAN_A2: f64 = 1200.0; // assumption

/// Safety regions that are mostly rural (slower) and mostly urban (faster); others are neutral.
pub const RURAL: [&str; 8] = [
    "VR01", "VR02", "VR03", "VR05", "VR06", "VR19", "VR23", "VR24",
];
pub const URBAN: [&str; 5] = ["VR13", "VR15", "VR17", "VR09", "VR12"];
pub const RURAL_FACTOR: f64 = 1.15;
pub const URBAN_FACTOR: f64 = 0.9;

/// The log-normal sigma that gives A1 its mean and 95th percentile.
pub fn a1_sigma() -> f64 {
    // ln(p95) - ln(mean) = 1.645 s - s^2/2, the smaller root.
    let d = (P95_A1 / MEAN_A1).ln();
    1.645 - (1.645f64 * 1.645 - 2.0 * d).sqrt()
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

/// Per-day generation plan, so a year can be produced in chunks.
pub struct Plan {
    pub spec: NationalYear,
    seed: u64,
    days: Vec<NaiveDate>,
    /// Per day: deployments per urgency (A0, A1, A2, B1, B2), consults, rapid responders.
    per_day: Vec<[u64; 7]>,
    municipalities: Vec<(String, f64)>,
}

pub const URGENCIES: [&str; 5] = ["A0", "A1", "A2", "B1", "B2"];

impl Plan {
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
        // Incident locations: every current municipality, equally likely (a simplification).
        let date = NaiveDate::from_ymd_opt(spec.year, 7, 1).expect("date");
        let mut municipalities: Vec<(String, f64)> = reference
            .municipalities
            .keys()
            .filter_map(|c| {
                let (_, r) = reference.municipality_on(c, date)?;
                let factor = if RURAL.contains(&r.code.as_str()) {
                    RURAL_FACTOR
                } else if URBAN.contains(&r.code.as_str()) {
                    URBAN_FACTOR
                } else {
                    1.0
                };
                Some((c.clone(), factor))
            })
            .collect();
        municipalities.sort_by(|a, b| a.0.cmp(&b.0));
        // Normalise the factors so the volume-weighted mean is 1 (keeps the national means).
        let mean: f64 =
            municipalities.iter().map(|m| m.1).sum::<f64>() / municipalities.len().max(1) as f64;
        for m in municipalities.iter_mut() {
            m.1 /= mean;
        }
        Plan {
            spec,
            seed,
            days,
            per_day,
            municipalities,
        }
    }

    pub fn days(&self) -> usize {
        self.days.len()
    }

    /// The events of day `i` (0-based), in time order.
    pub fn day(&self, i: usize) -> Vec<DispatchEvent> {
        let mut rng = StdRng::seed_from_u64(self.seed ^ ((i as u64 + 1) << 20) ^ 0x6e61_7469);
        let date = self.days[i];
        let counts = self.per_day[i];
        let sigma = a1_sigma();
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
        for (u, urgency) in URGENCIES.iter().enumerate() {
            for _ in 0..counts[u] {
                let seconds = rng.random_range(0..86_400u32);
                let local = date.and_hms_opt(0, 0, 0).expect("midnight")
                    + chrono::Duration::seconds(i64::from(seconds));
                let t0 = super::amsterdam_ms(local);
                let (code, factor) =
                    &self.municipalities[rng.random_range(0..self.municipalities.len())];
                let incident = format!("NAT-{}-{}-{i:03}-{k:05}", self.spec.year, self.seed);
                let env = |rng: &mut StdRng, at: i64| Envelope {
                    event_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
                    incident_id: incident.clone(),
                    dispatch_centre: "MKA".to_string(),
                    occurred_at_ms: at,
                };
                events.push(DispatchEvent {
                    envelope: env(&mut rng, t0),
                    payload: Payload::Call {
                        urgency: (*urgency).into(),
                        municipality_code: code.clone(),
                        patient_age_years: rng.random_bool(0.92).then(|| rng.random_range(0..100)),
                        triage_code: None,
                    },
                });
                // Planned (B) rides: on scene at the agreed time, about 30-90 minutes later.
                let response_ms = if u < 3 {
                    (dists[u].sample(&mut rng) * factor * 1000.0) as i64
                } else {
                    rng.random_range(1_800_000..5_400_000)
                };
                let unit = format!("AMB-{}", rng.random_range(1..=900));
                let alert_at = t0 + (response_ms / 8).min(120_000);
                events.push(DispatchEvent {
                    envelope: env(&mut rng, alert_at),
                    payload: Payload::Alert {
                        unit_id: unit.clone(),
                        unit_type: "ALS_AMBULANCE".into(),
                        mmt_station: None,
                        dispatch_kind: "PRIMARY".into(),
                        urgency: Some((*urgency).into()),
                    },
                });
                events.push(DispatchEvent {
                    envelope: env(&mut rng, t0 + response_ms.max(alert_at - t0 + 1000)),
                    payload: Payload::OnScene {
                        unit_id: unit.clone(),
                    },
                });
                if rapid[k] {
                    let rr = format!("RR-{}", rng.random_range(1..=120));
                    events.push(DispatchEvent {
                        envelope: env(&mut rng, alert_at + 5_000),
                        payload: Payload::Alert {
                            unit_id: rr,
                            unit_type: "RAPID_RESPONDER".into(),
                            mmt_station: None,
                            dispatch_kind: "PRIMARY".into(),
                            urgency: Some((*urgency).into()),
                        },
                    });
                }
                if !consult[k] {
                    let leave = t0 + response_ms + rng.random_range(900_000..2_400_000);
                    events.push(DispatchEvent {
                        envelope: env(&mut rng, leave),
                        payload: Payload::Transport {
                            unit_id: unit,
                            mode: "AMBULANCE".into(),
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

    fn reference() -> Reference {
        super::super::shipped_reference()
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
        let mut response: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for d in 0..plan.days() {
            for e in plan.day(d) {
                match &e.payload {
                    Payload::Call { urgency, .. } => {
                        let u = URGENCIES.iter().position(|x| x == urgency).unwrap();
                        calls[u] += 1;
                        calls_at.insert(
                            e.envelope.incident_id.clone(),
                            (u, e.envelope.occurred_at_ms),
                        );
                    }
                    Payload::OnScene { .. } => {
                        let (u, t0) = calls_at[&e.envelope.incident_id];
                        if u < 2 {
                            response[u].push((e.envelope.occurred_at_ms - t0) as f64 / 1000.0);
                        }
                    }
                    Payload::Transport { .. } => transports += 1,
                    Payload::Alert { unit_type, .. } if unit_type == "RAPID_RESPONDER" => {
                        rapid += 1
                    }
                    _ => {}
                }
            }
        }
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
        assert!((p95 - P95_A1).abs() / P95_A1 < 0.06, "A1 p95 {p95}");
    }
}
