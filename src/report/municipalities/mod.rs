//! The municipality-level A0/A1 response-time report (transparency from reporting year 2025): per
//! municipality of the incident location (today's municipalities), safety region and the country,
//! per year and quarter, per urgency A0, A1 and A0+A1; with small-count suppression so that no
//! published figure exposes a patient.
//!
//! [`model`] holds the report as plain data: what the computation produces, what suppression
//! decides, and what every output format (Markdown, CSV, JSON, HTML, the published ClickHouse
//! tables) renders.

pub mod html;
pub mod model;
pub mod suppress;
