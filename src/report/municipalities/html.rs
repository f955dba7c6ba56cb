//! The municipality report as one self-contained HTML page for people (Dutch): how to read it, the
//! norm check per safety region, a map of the municipalities coloured by the share of A1
//! deployments on scene within 15 minutes (withheld municipalities hatched, the reason on hover),
//! per region a ranked bar chart of the A1 95th percentile with the 15-minute norm line and the
//! tables per municipality with suppression reasons, the exclusions and the suppression settings.
//! Rendered from [`MunicipalityReport`] only; numbers in Dutch notation like the factsheet.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::enrich::reference::Reference;
use crate::report::factsheet::{count, pct};
use crate::report::map::{self, escape, Bar, Fill, MapEntry, MapError, Topology};

use super::model::{
    Area, Cell, Exclusion, MunicipalityReport, Period, SuppressionParams, SuppressionReason,
    UrgencyGroup,
};

const DASH: &str = "–";

fn share_nl(v: Option<f64>) -> String {
    v.map(|v| pct(v * 100.0)).unwrap_or_else(|| DASH.into())
}

fn time_nl(v: Option<f64>) -> String {
    v.map(map::minutes_seconds).unwrap_or_else(|| DASH.into())
}

/// Why (part of) a cell is not shown, in Dutch; empty when everything is published.
fn note(c: &Cell, params: &SuppressionParams) -> String {
    match c.suppressed {
        Some(SuppressionReason::TooFewDeployments) => format!(
            "afgeschermd: {} (minder dan {})",
            SuppressionReason::TooFewDeployments.text_nl(),
            params.min_deployments
        ),
        Some(r) => format!("afgeschermd: {}", r.text_nl()),
        None if c.percentiles_withheld => format!(
            "mediaan en percentielen niet gepubliceerd (minder dan {} inzetten)",
            params.min_deployments_percentiles
        ),
        None => String::new(),
    }
}

fn norm_nl(c: &Cell) -> &'static str {
    match c.meets_norm {
        Some(true) => "ja",
        Some(false) => "nee",
        None => DASH,
    }
}

const STAT_HEADS: &str = "<th>inzetten</th><th>gemiddeld</th><th>mediaan</th><th>90e perc.</th>\
                          <th>95e perc.</th><th>binnen 15 min</th>";

fn stat_tds(c: &Cell) -> String {
    format!(
        "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td>",
        c.n.map(count).unwrap_or_else(|| DASH.into()),
        time_nl(c.mean_seconds),
        time_nl(c.median_seconds),
        time_nl(c.p90_seconds),
        time_nl(c.p95_seconds),
        share_nl(c.share_within_15),
    )
}

/// Region code -> (name, municipality code -> name), from the report's own cells.
type Regions = BTreeMap<String, (String, BTreeMap<String, String>)>;

fn regions_of(report: &MunicipalityReport) -> Regions {
    let mut regions: Regions = BTreeMap::new();
    for c in &report.cells {
        match &c.area {
            Area::Region { code, name } => {
                regions.entry(code.clone()).or_default().0 = name.clone();
            }
            Area::Municipality {
                code,
                name,
                region_code,
            } => {
                regions
                    .entry(region_code.clone())
                    .or_default()
                    .1
                    .insert(code.clone(), name.clone());
            }
            Area::National => {}
        }
    }
    regions
}

fn cell<'a>(
    report: &'a MunicipalityReport,
    code: &str,
    period: Period,
    urgency: UrgencyGroup,
) -> Option<&'a Cell> {
    report
        .cells_for(period, urgency)
        .find(|c| c.area.code() == code)
}

fn quarters(report: &MunicipalityReport) -> Vec<Period> {
    let set: BTreeSet<Period> = report
        .cells
        .iter()
        .map(|c| c.period)
        .filter(|p| matches!(p, Period::Quarter(..)))
        .collect();
    set.into_iter().collect()
}

fn map_entries(report: &MunicipalityReport, regions: &Regions) -> BTreeMap<String, MapEntry> {
    let year = Period::Year(report.year);
    let mut entries = BTreeMap::new();
    for (region_code, (region_name, munis)) in regions {
        for (code, name) in munis {
            let c = cell(report, code, year, UrgencyGroup::A1);
            let place = format!("{name} ({code}), {region_code} {region_name}");
            let entry = match c {
                Some(c) if c.suppressed.is_none() && c.share_within_15.is_some() => MapEntry {
                    fill: Fill::Share(c.share_within_15.unwrap_or_default()),
                    title: format!(
                        "{place}: {} van {} A1-inzetten binnen 15 minuten ter plaatse; 95e percentiel {}",
                        share_nl(c.share_within_15),
                        c.n.map(count).unwrap_or_else(|| DASH.into()),
                        if c.percentiles_withheld {
                            "niet gepubliceerd".to_string()
                        } else {
                            time_nl(c.p95_seconds)
                        }
                    ),
                },
                Some(c) => MapEntry {
                    fill: Fill::Withheld,
                    title: format!("{place}: geen gepubliceerde waarde, {}", note(c, &report.params)),
                },
                None => MapEntry {
                    fill: Fill::Withheld,
                    title: format!("{place}: geen A1-inzetten in {}", report.year),
                },
            };
            entries.insert(code.clone(), entry);
        }
    }
    entries
}

/// The whole page. `topology` gives the map its 342 municipal outlines; municipalities outside a
/// region-restricted report are drawn grey as context.
pub fn render(report: &MunicipalityReport, topology: &Topology) -> Result<String, MapError> {
    let regions = regions_of(report);
    let year = Period::Year(report.year);
    let params = &report.params;
    let scope = match &report.region {
        Some(r) => {
            let name = regions.get(r).map(|x| x.0.as_str()).unwrap_or_default();
            format!(", veiligheidsregio {} {}", escape(r), escape(name))
        }
        None => String::new(),
    };
    let title = format!(
        "Responstijden ambulancezorg per gemeente {}{scope}",
        report.year
    );
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"nl\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}}\
         table{{border-collapse:collapse;margin:1em 0;font-size:14px}}td,th{{border-bottom:1px solid #ccc;padding:3px 8px;text-align:left}}\
         td.n{{text-align:right;font-variant-numeric:tabular-nums}}td.opm{{color:#555}}figure{{margin:1.5em 0}}\
         figcaption{{color:#555;font-size:14px}}path.gemeente:hover{{stroke:#000;stroke-width:1.2}}\
         details{{margin:0.5em 0 1.5em}}summary{{cursor:pointer}}</style></head><body>\n\
         <h1>{title}</h1>\n"
    );
    let _ = write!(
        s,
        "<p>Hoe snel is de ambulance er bij de spoedeisendste meldingen (urgentie A0 en A1)? De responstijd \
         loopt van het moment dat de meldkamer de 112-melding aanneemt tot de eerste ambulance of \
         snelle-inzeteenheid ter plaatse. De wettelijke norm geldt per veiligheidsregio: 95% van de \
         A1-inzetten binnen {norm} minuten. Per gemeente is dit informatie, geen norm: in een kleine of \
         landelijke gemeente ligt het percentage vaak lager zonder dat de regio de norm mist.</p>\n\
         <h2>Zo leest u dit rapport</h2>\n<ul>\
         <li>Tijden staan in minuten:seconden (16:51 is 16 minuten en 51 seconden); getallen in \
         Nederlandse notatie (1.234 inzetten, 93,4%).</li>\
         <li>De kaart kleurt elke gemeente naar het aandeel A1-inzetten dat binnen 15 minuten ter plaatse \
         was. Wijs een gemeente aan voor de cijfers. Gearceerde gemeenten hebben geen gepubliceerde \
         waarde; de reden staat bij het aanwijzen en in de tabellen.</li>\
         <li>Een cel met minder dan {k} inzetten wordt niet gepubliceerd (te weinig inzetten, ter \
         bescherming van de privacy van patiënten). Mediaan en percentielen vragen minstens {kp} inzetten. \
         Soms is ook een grotere cel afgeschermd, zodat een afgeschermde waarde niet uit totalen of \
         andere cellen terug te rekenen is.</li>\
         <li>Per veiligheidsregio een staafdiagram: het 95e percentiel van de A1-responstijd per gemeente, \
         van snel naar langzaam, met een rode lijn bij de norm van 15 minuten. Staat de staaf voorbij de \
         lijn, dan was 5% of meer van de inzetten later dan 15 minuten.</li>\
         <li>Gemeenten zijn die van vandaag: cijfers van samengevoegde gemeenten tellen mee bij de \
         gemeente waarin ze zijn opgegaan.</li></ul>\n",
        norm = report.norm_seconds / 60,
        k = params.min_deployments,
        kp = params.min_deployments_percentiles,
    );

    // The map.
    let entries = map_entries(report, &regions);
    let mut all_entries = entries.clone();
    if report.region.is_some() {
        for shape in &topology.shapes {
            all_entries.entry(shape.code.clone()).or_insert(MapEntry {
                fill: Fill::OutOfScope,
                title: format!("{} ({}): buiten dit rapport", shape.name, shape.code),
            });
        }
    }
    let map_title = format!(
        "Kaart: aandeel A1-inzetten binnen 15 minuten ter plaatse per gemeente, {}",
        report.year
    );
    let _ = write!(
        s,
        "<h2>Kaart</h2>\n<figure id=\"kaart-figuur\">{}<figcaption>{}. Gemeentegrenzen 2025, {}.\
         </figcaption></figure>\n",
        map::choropleth(topology, &all_entries, &map_title),
        escape(&map_title),
        escape(map::CREDIT)
    );

    // Norm check per region and nationally (A1, the year).
    let _ = write!(
        s,
        "<h2>De norm per veiligheidsregio ({})</h2>\n<table class=\"regio-norm\"><tr><th>regio</th>\
         {STAT_HEADS}<th>norm gehaald</th><th>opmerking</th></tr>\n",
        report.year
    );
    let mut norm_rows: Vec<(String, String)> = regions
        .iter()
        .map(|(code, (name, _))| (code.clone(), format!("{code} {name}")))
        .collect();
    if report.region.is_none() {
        norm_rows.push(("NL".into(), "Nederland".into()));
    }
    for (code, label) in &norm_rows {
        if let Some(c) = cell(report, code, year, UrgencyGroup::A1) {
            let _ = writeln!(
                s,
                "<tr><td>{}</td>{}<td>{}</td><td class=\"opm\">{}</td></tr>",
                escape(label),
                stat_tds(c),
                norm_nl(c),
                escape(&note(c, params))
            );
        }
    }
    s.push_str("</table>\n");

    // Per region: the ranked chart and the tables.
    let qs = quarters(report);
    for (region_code, (region_name, munis)) in &regions {
        let _ = writeln!(
            s,
            "<section class=\"regio\" id=\"{rc}\"><h2>{rc} {rn}</h2>",
            rc = escape(region_code),
            rn = escape(region_name)
        );
        let bars: Vec<Bar> = munis
            .iter()
            .map(|(code, name)| {
                let c = cell(report, code, year, UrgencyGroup::A1);
                let (seconds, why) = match c {
                    Some(c) if c.suppressed.is_none() && c.p95_seconds.is_some() => {
                        (c.p95_seconds, String::new())
                    }
                    Some(c) => (None, note(c, params)),
                    None => (None, "geen A1-inzetten".into()),
                };
                Bar {
                    label: name.clone(),
                    seconds,
                    note: why,
                }
            })
            .collect();
        let caption = format!(
            "{region_name}: 95e percentiel A1-responstijd, {}",
            report.year
        );
        let _ = writeln!(
            s,
            "<figure class=\"regio-grafiek\">{}<figcaption>{}, per gemeente van snel naar langzaam; \
             rode lijn: norm {}.</figcaption></figure>",
            map::ranked_bars(&caption, &bars, report.norm_seconds)?,
            escape(&caption),
            map::minutes_seconds(f64::from(report.norm_seconds))
        );
        let table = |s: &mut String, periods: &[Period]| {
            let _ = writeln!(
                s,
                "<table class=\"gemeenten\"><tr><th>gemeente</th><th>periode</th><th>urgentie</th>\
                 {STAT_HEADS}<th>opmerking</th></tr>"
            );
            let mut rows: Vec<(&String, &String)> = munis.iter().collect();
            rows.sort_by(|a, b| a.1.cmp(b.1));
            let mut areas: Vec<(String, String)> = rows
                .iter()
                .map(|(code, name)| ((*code).clone(), (*name).clone()))
                .collect();
            areas.push((region_code.clone(), format!("regio {region_name}")));
            for (code, name) in &areas {
                for &p in periods {
                    for u in UrgencyGroup::ALL {
                        if let Some(c) = cell(report, code, p, u) {
                            let _ = writeln!(
                                s,
                                "<tr><td>{}</td><td>{}</td><td>{}</td>{}<td class=\"opm\">{}</td></tr>",
                                escape(name),
                                escape(&p.label()),
                                u.label(),
                                stat_tds(c),
                                escape(&note(c, params))
                            );
                        }
                    }
                }
            }
            s.push_str("</table>\n");
        };
        let _ = writeln!(s, "<h3>Per gemeente, {}</h3>", report.year);
        table(&mut s, &[year]);
        if !qs.is_empty() {
            s.push_str("<details><summary>Per kwartaal</summary>\n");
            table(&mut s, &qs);
            s.push_str("</details>\n");
        }
        s.push_str("</section>\n");
    }

    // Exclusions and settings.
    let _ = write!(
        s,
        "<h2>Niet meegeteld</h2>\n<p>Meldingen die niet in de responstijden meetellen, per reden (ze \
         zijn geteld, niet weggelaten).</p>\n<table class=\"uitsluitingen\"><tr><th>reden</th>\
         <th>urgentie</th><th>meldingen</th></tr>\n"
    );
    let mut exclusions: Vec<&Exclusion> = report.exclusions.iter().collect();
    exclusions.sort_by(|a, b| (&a.reason, a.urgency).cmp(&(&b.reason, b.urgency)));
    for e in exclusions {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(exclusion_nl(&e.reason)),
            e.urgency.label(),
            count(e.incidents)
        );
    }
    s.push_str("</table>\n");
    let _ = write!(
        s,
        "<h2>Afscherming</h2>\n<table class=\"instellingen\">\
         <tr><td>minimum aantal inzetten voor een cel</td><td class=\"n\">{}</td></tr>\
         <tr><td>minimum aantal inzetten voor mediaan en percentielen</td><td class=\"n\">{}</td></tr>\
         <tr><td>norm (A1, per veiligheidsregio, 95% binnen)</td><td class=\"n\">{}</td></tr></table>\n\
         <p>Afgeschermde cellen zijn zo gekozen dat hun waarde niet is af te leiden uit wat wel gepubliceerd \
         is: niet uit regio- of landtotalen, niet uit A0+A1 min de andere urgentie, niet uit het jaar min \
         de andere kwartalen en niet uit gemiddelden of percentages maal aantallen.</p>\n\
         <p>Gemaakt door dispatch-ingest. Kaart: {}.</p>\n</body></html>\n",
        params.min_deployments,
        params.min_deployments_percentiles,
        map::minutes_seconds(f64::from(report.norm_seconds)),
        escape(map::CREDIT)
    );
    Ok(s)
}

/// The Dutch text of an exclusion reason (unknown reasons are shown as they are).
pub fn exclusion_nl(reason: &str) -> &str {
    match reason {
        "no_counting_arrival" => "geen meetellende eenheid ter plaatse",
        "arrival_before_call" => "aankomst vóór de melding",
        "implausible_time" => "onwaarschijnlijke responstijd",
        other => other,
    }
}

/// A synthetic report for tests and previews: every municipality valid on 1 January of `year` in
/// `reference`, its region and the country, for the year and its quarters and every urgency, with
/// deterministic made-up figures. Some municipalities are suppressed (too few deployments, or
/// complementary) and some have their percentiles withheld, so every rendering path is exercised.
/// The figures are not consistent with each other; never publish them.
pub fn synthetic_report(reference: &Reference, year: i32) -> MunicipalityReport {
    let date = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default();
    let params = SuppressionParams {
        min_deployments: 10,
        min_deployments_percentiles: 20,
    };
    let mut munis: Vec<(String, String, String)> = reference
        .municipalities
        .keys()
        .filter_map(|code| {
            let (row, region) = reference.municipality_on(code, date)?;
            Some((code.clone(), row.name.clone(), region.code.clone()))
        })
        .collect();
    munis.sort();
    let mut regions: Vec<(String, String)> = reference
        .regions
        .values()
        .map(|r| (r.code.clone(), r.name.clone()))
        .collect();
    regions.sort();
    let mut periods = vec![Period::Year(year)];
    periods.extend((1..=4).map(|q| Period::Quarter(year, q)));
    let mut cells = Vec::new();
    let mut areas: Vec<(Area, u64)> = Vec::new();
    for (i, (code, name, region_code)) in munis.iter().enumerate() {
        let h = code[2..].parse::<u64>().unwrap_or(0) * 7919 + i as u64;
        // Every 23rd municipality is tiny, every 31st has its percentiles withheld.
        let n = if i % 23 == 5 {
            6
        } else if i % 31 == 7 {
            15
        } else {
            60 + h % 3000
        };
        areas.push((
            Area::Municipality {
                code: code.clone(),
                name: name.clone(),
                region_code: region_code.clone(),
            },
            n,
        ));
    }
    for (code, name) in &regions {
        areas.push((
            Area::Region {
                code: code.clone(),
                name: name.clone(),
            },
            20_000,
        ));
    }
    areas.push((Area::National, 500_000));
    for (i, (area, n_year)) in areas.iter().enumerate() {
        for &period in &periods {
            for urgency in UrgencyGroup::ALL {
                let mut n = match period {
                    Period::Year(_) => *n_year,
                    Period::Quarter(..) => n_year / 4,
                };
                n = match urgency {
                    UrgencyGroup::A0 => n / 30,
                    UrgencyGroup::A1 => n - n / 30,
                    UrgencyGroup::A0A1 => n,
                };
                let wobble = ((i * 37 + n as usize) % 100) as f64;
                let p95 = 780.0 + wobble * 4.5;
                let share = (0.72 + wobble * 0.0027).min(0.995);
                let is_region = matches!(area, Area::Region { .. });
                let mut c = Cell {
                    area: area.clone(),
                    period,
                    urgency,
                    n: Some(n),
                    mean_seconds: Some(p95 * 0.6),
                    median_seconds: Some(p95 * 0.58),
                    p90_seconds: Some(p95 * 0.9),
                    p95_seconds: Some(p95),
                    share_within_15: Some(share),
                    suppressed: None,
                    percentiles_withheld: false,
                    meets_norm: (is_region && urgency == UrgencyGroup::A1).then_some(share >= 0.95),
                };
                let complementary = matches!(area, Area::Municipality { .. })
                    && i % 29 == 11
                    && urgency != UrgencyGroup::A0A1;
                if n < params.min_deployments || complementary {
                    c.suppressed = Some(if complementary {
                        SuppressionReason::Complementary
                    } else {
                        SuppressionReason::TooFewDeployments
                    });
                } else if n < params.min_deployments_percentiles {
                    c.percentiles_withheld = true;
                }
                if c.suppressed.is_some() {
                    c.n = None;
                    c.mean_seconds = None;
                    c.share_within_15 = None;
                    c.meets_norm = None;
                }
                if c.suppressed.is_some() || c.percentiles_withheld {
                    c.median_seconds = None;
                    c.p90_seconds = None;
                    c.p95_seconds = None;
                }
                cells.push(c);
            }
        }
    }
    let exclusions = [
        "no_counting_arrival",
        "arrival_before_call",
        "implausible_time",
    ]
    .iter()
    .enumerate()
    .flat_map(|(i, r)| {
        [UrgencyGroup::A0, UrgencyGroup::A1].map(|u| Exclusion {
            reason: r.to_string(),
            urgency: u,
            incidents: 1_234 / (i as u64 + 1) + u as u64 * 17,
        })
    })
    .collect();
    MunicipalityReport {
        year,
        region: None,
        params,
        norm_seconds: 900,
        cells,
        exclusions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixtures() -> (MunicipalityReport, Topology) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference");
        let reference = Reference::load(&dir).unwrap();
        (
            synthetic_report(&reference, 2025),
            Topology::load(&dir).unwrap(),
        )
    }

    #[test]
    fn page_has_the_map_a_chart_per_region_and_the_reasons() {
        let (report, topology) = fixtures();
        let html = render(&report, &topology).unwrap();
        assert_eq!(html.matches("<path class=\"gemeente").count(), 342);
        assert_eq!(html.matches("<figure class=\"regio-grafiek\">").count(), 25);
        assert_eq!(html.matches("<section class=\"regio\"").count(), 25);
        assert!(html.contains("afgeschermd: te weinig inzetten (minder dan 10)"));
        assert!(html.contains("afgeschermd: afgeschermd om afleiding te voorkomen"));
        assert!(html.contains("mediaan en percentielen niet gepubliceerd (minder dan 20 inzetten)"));
        assert!(html.contains("geen gepubliceerde waarde, afgeschermd"));
        assert!(html.contains("geen meetellende eenheid ter plaatse"));
        assert!(html.contains("Bron: CBS, PDOK"));
        assert!(html.contains("2025-Q4"));
        // Dutch notation: thousands with a dot, decimals with a comma.
        assert!(
            html.contains(">483.334<"),
            "national A1 deployments, Dutch notation"
        );
        assert!(html.contains(",") && html.contains('%'));
        // Every municipality of the report has a coloured or hatched shape with a hover text.
        let withheld = html.matches("class=\"gemeente geen-waarde\"").count();
        assert!(withheld > 5 && withheld < 60, "{withheld}");
        assert!(!html.contains("buiten dit rapport</title>"));
    }

    #[test]
    fn a_region_report_draws_the_rest_of_the_country_as_context() {
        let (mut report, topology) = fixtures();
        report.cells.retain(|c| match &c.area {
            Area::Municipality { region_code, .. } => region_code == "VR01",
            Area::Region { code, .. } => code == "VR01",
            Area::National => false,
        });
        report.region = Some("VR01".into());
        let html = render(&report, &topology).unwrap();
        assert_eq!(html.matches("<path class=\"gemeente").count(), 342);
        assert_eq!(html.matches("<figure class=\"regio-grafiek\">").count(), 1);
        assert!(html.contains("veiligheidsregio VR01 Groningen"));
        let context = html.matches("class=\"gemeente buiten-rapport\"").count();
        let in_region = report
            .cells
            .iter()
            .filter(|c| matches!(c.area, Area::Municipality { .. }))
            .map(|c| c.area.code())
            .collect::<BTreeSet<_>>()
            .len();
        assert_eq!(context + in_region, 342);
    }
}
