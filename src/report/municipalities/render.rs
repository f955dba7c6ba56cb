//! The municipality report for people: Markdown, CSV (one row per cell, the suppression reason in
//! its own column) and JSON, in Dutch number notation like the factsheet (15.273 inzetten,
//! 10:13 min:s, 95,1%). The HTML with the map is `html.rs` (separate work).

use super::model::{Area, Cell, MunicipalityReport, Period, UrgencyGroup};

/// Keep the cells of one safety region (the region, its municipalities, and the national cells
/// for comparison) and/or one quarter. Suppression was decided on the whole table before.
pub fn restrict(
    mut report: MunicipalityReport,
    region: Option<&str>,
    quarter: Option<u8>,
) -> MunicipalityReport {
    report.cells.retain(|c| {
        let in_region = match (region, &c.area) {
            (None, _) | (_, Area::National) => true,
            (Some(r), Area::Region { code, .. }) => code == r,
            (Some(r), Area::Municipality { region_code, .. }) => region_code == r,
        };
        let in_period = match quarter {
            None => true,
            Some(q) => c.period == Period::Quarter(report.year, q),
        };
        in_region && in_period
    });
    report.region = region.map(str::to_string);
    report
}

/// A count in Dutch notation (15.273), as the factsheet prints it.
pub(crate) use crate::report::factsheet::count as count_nl;

/// Seconds as minutes:seconds, rounded to the second: 613.4 -> "10:13".
pub fn time_nl(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// A share 0..1 as a Dutch percentage with one decimal: 0.9512 -> "95,1%".
pub fn pct_nl(share: f64) -> String {
    format!("{:.1}%", share * 100.0).replace('.', ",")
}

fn opt(v: Option<f64>, f: fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".into())
}

fn level(a: &Area) -> &'static str {
    match a {
        Area::National => "land",
        Area::Region { .. } => "regio",
        Area::Municipality { .. } => "gemeente",
    }
}

fn region_of(a: &Area) -> &str {
    match a {
        Area::National => "",
        Area::Region { code, .. } => code,
        Area::Municipality { region_code, .. } => region_code,
    }
}

fn note(c: &Cell) -> String {
    if let Some(r) = c.suppressed {
        r.text_nl().to_string()
    } else if c.percentiles_withheld {
        "percentielen niet getoond (te weinig inzetten)".into()
    } else {
        String::new()
    }
}

fn norm(c: &Cell) -> &'static str {
    match c.meets_norm {
        Some(true) => "ja",
        Some(false) => "nee",
        None => "",
    }
}

fn md_row(out: &mut String, c: &Cell) {
    let name = match &c.area {
        Area::Region { code, name } => format!("{name} ({code})"),
        a => a.name().to_string(),
    };
    out.push_str(&format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        c.n.map(count_nl).unwrap_or_else(|| "–".into()),
        opt(c.mean_seconds, time_nl),
        opt(c.median_seconds, time_nl),
        opt(c.p90_seconds, time_nl),
        opt(c.p95_seconds, time_nl),
        opt(c.share_within_15, pct_nl),
        norm(c),
        note(c),
    ));
}

const MD_HEADER: &str = "| gebied | inzetten | gemiddeld | mediaan | 90e perc. | 95e perc. | binnen 15 min | norm gehaald | opmerking |\n|---|---:|---:|---:|---:|---:|---:|:-:|---|\n";

/// The periods a report shows: the quarter if restricted to one, else the year.
fn shown_period(r: &MunicipalityReport) -> Period {
    r.cells
        .iter()
        .map(|c| c.period)
        .find(|p| matches!(p, Period::Year(_)))
        .or_else(|| r.cells.first().map(|c| c.period))
        .unwrap_or(Period::Year(r.year))
}

/// The national and regional A1 lines of the shown period: a short summary (demo.sh).
pub fn region_summary(r: &MunicipalityReport) -> String {
    let period = shown_period(r);
    let mut out = format!(
        "Responstijden A1 per veiligheidsregio, {} (norm: 95% binnen 15 minuten)\n\n{MD_HEADER}",
        period.label()
    );
    for c in r.cells_for(period, UrgencyGroup::A1) {
        if !matches!(c.area, Area::Municipality { .. }) {
            md_row(&mut out, c);
        }
    }
    out
}

/// The report as Markdown in Dutch: regions and municipalities of the shown period (the year, or the quarter it was restricted to) and the exclusions.
pub fn to_markdown(r: &MunicipalityReport) -> String {
    let period = shown_period(r);
    let mut out = format!("# Responstijden A0/A1 per gemeente, {}\n\n", period.label());
    if let Some(region) = &r.region {
        out.push_str(&format!("Veiligheidsregio {region}.\n\n"));
    }
    out.push_str(&format!(
        "Responstijd: van het aannemen van de 112-melding door de meldkamer tot de eerste \
         aankomst ter plaatse van een ambulance of rapid responder (MMT telt niet mee); \
         gemeenten in de huidige indeling. Percentielen exact (naaste rang), mediaan bij een \
         even aantal het gemiddelde van de middelste twee. Afscherming: minder dan {} inzetten: \
         geen cijfers; mediaan en percentielen vanaf {} inzetten. Norm: 95% van de A1-inzetten \
         binnen {} minuten per veiligheidsregio.\n\n",
        r.params.min_deployments,
        r.params.min_deployments_percentiles,
        r.norm_seconds / 60
    ));
    for urgency in UrgencyGroup::ALL {
        out.push_str(&format!(
            "## {}\n\n### Land en veiligheidsregio's\n\n{MD_HEADER}",
            urgency.label()
        ));
        for c in r.cells_for(period, urgency) {
            if !matches!(c.area, Area::Municipality { .. }) {
                md_row(&mut out, c);
            }
        }
        out.push_str(&format!("\n### Gemeenten\n\n{MD_HEADER}"));
        let mut munis: Vec<&Cell> = r
            .cells_for(period, urgency)
            .filter(|c| matches!(c.area, Area::Municipality { .. }))
            .collect();
        munis.sort_by(|a, b| {
            (region_of(&a.area), a.area.name()).cmp(&(region_of(&b.area), b.area.name()))
        });
        for c in munis {
            md_row(&mut out, c);
        }
        out.push('\n');
    }
    if !r.exclusions.is_empty() {
        out.push_str("## Niet meegeteld (landelijk, heel het jaar)\n\n| reden | urgentie | incidenten |\n|---|---|---:|\n");
        for e in &r.exclusions {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                e.reason,
                e.urgency.label(),
                count_nl(e.incidents)
            ));
        }
    }
    out
}

/// One row per cell, `;`-separated (as Dutch spreadsheets expect with decimal commas).
pub fn to_csv(r: &MunicipalityReport) -> String {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    w.write_record([
        "periode",
        "niveau",
        "code",
        "naam",
        "veiligheidsregio",
        "urgentie",
        "inzetten",
        "gemiddeld",
        "mediaan",
        "percentiel_90",
        "percentiel_95",
        "binnen_15_min",
        "norm_gehaald",
        "afscherming",
    ])
    .expect("in-memory CSV");
    for c in &r.cells {
        let blank = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_default();
        w.write_record([
            c.period.label(),
            level(&c.area).to_string(),
            c.area.code().to_string(),
            c.area.name().to_string(),
            region_of(&c.area).to_string(),
            c.urgency.label().to_string(),
            c.n.map(count_nl).unwrap_or_default(),
            blank(c.mean_seconds, time_nl),
            blank(c.median_seconds, time_nl),
            blank(c.p90_seconds, time_nl),
            blank(c.p95_seconds, time_nl),
            blank(c.share_within_15, pct_nl),
            norm(c).to_string(),
            note(c),
        ])
        .expect("in-memory CSV");
    }
    String::from_utf8(w.into_inner().expect("in-memory CSV")).expect("UTF-8")
}

/// The report as pretty-printed JSON, every cell with its statistics and suppression.
pub fn to_json(r: &MunicipalityReport) -> String {
    serde_json::to_string_pretty(r).expect("serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dutch_notation() {
        assert_eq!(time_nl(613.4), "10:13");
        assert_eq!(time_nl(1011.0), "16:51");
        assert_eq!(pct_nl(0.9512), "95,1%");
    }
}
