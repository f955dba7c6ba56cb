//! SVG charts for the factsheet report, drawn with plotters: calls per month, deployments vs
//! cancels per year, cancel reasons, and deployments/cancels per station.

use plotters::prelude::*;

const WIDTH: u32 = 760;
const HEIGHT: u32 = 380;
const DEPLOYMENT: RGBColor = RGBColor(0, 94, 160);
const CANCEL: RGBColor = RGBColor(230, 120, 30);
const SERIES: [RGBColor; 4] = [
    RGBColor(150, 150, 150),
    RGBColor(0, 94, 160),
    RGBColor(0, 150, 110),
    RGBColor(200, 50, 60),
];

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Every chart's last step: the legend box, then the SVG written out.
fn finish<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
) -> DrawResult<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn max_or_one(values: impl Iterator<Item = u64>) -> u64 {
    values.max().unwrap_or(0).max(1)
}

/// Calls per month, one line per year: `(year, [calls for months 1..=12])`.
pub fn calls_per_month(series: &[(i32, [u64; 12])]) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let top = max_or_one(series.iter().flat_map(|(_, m)| m.iter().copied())) * 11 / 10;
        let mut chart = ChartBuilder::on(&root)
            .caption("MMT-oproepen per maand", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(1u32..12u32, 0u64..top)?;
        chart
            .configure_mesh()
            .x_labels(12)
            .x_desc("maand")
            .y_desc("oproepen")
            .draw()?;
        for (i, (year, months)) in series.iter().enumerate() {
            let color = SERIES[(i + 1) % SERIES.len()];
            chart
                .draw_series(LineSeries::new(
                    months.iter().enumerate().map(|(m, v)| (m as u32 + 1, *v)),
                    color.stroke_width(2),
                ))?
                .label(year.to_string())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        }
        finish(&mut chart, &root)?;
    }
    Ok(svg)
}

/// Labelled groups of bars: for each label, the values of every series side by side.
fn grouped_bars(
    caption: &str,
    labels: &[String],
    series: &[(&str, RGBColor, Vec<u64>)],
    y_desc: &str,
    stacked: bool,
) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let top = if stacked {
            max_or_one((0..labels.len()).map(|i| series.iter().map(|s| s.2[i]).sum::<u64>()))
        } else {
            max_or_one(series.iter().flat_map(|s| s.2.iter().copied()))
        } as f64
            * 1.1;
        let n = labels.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
        let names = labels.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                    names[i].clone()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.0}"))
            .y_desc(y_desc)
            .draw()?;
        let k = series.len().max(1) as f64;
        for (j, (name, color, values)) in series.iter().enumerate() {
            let color = *color;
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    let (x0, x1, y0) = if stacked {
                        let below: u64 = series[..j].iter().map(|s| s.2[i]).sum();
                        (i as f64 + 0.15, i as f64 + 0.85, below as f64)
                    } else {
                        let w = 0.7 / k;
                        let x0 = i as f64 + 0.15 + j as f64 * w;
                        (x0, x0 + w, 0.0)
                    };
                    Rectangle::new([(x0, y0), (x1, y0 + *v as f64)], color.filled())
                }))?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        finish(&mut chart, &root)?;
    }
    Ok(svg)
}

/// Deployments and cancels per year, stacked.
pub fn deployments_vs_cancels(years: &[(i32, u64, u64)]) -> DrawResult<String> {
    deployment_and_cancel_bars(
        "Inzetten en cancels per jaar",
        years.iter().map(|y| (y.0.to_string(), y.1, y.2)).collect(),
        true,
    )
}

/// Cancels per reason.
pub fn cancel_reasons(reasons: &[(String, u64)]) -> DrawResult<String> {
    let labels: Vec<String> = reasons.iter().map(|r| short_reason(&r.0)).collect();
    grouped_bars(
        "Cancelredenen",
        &labels,
        &[("cancels", CANCEL, reasons.iter().map(|r| r.1).collect())],
        "cancels",
        false,
    )
}

/// Deployments and cancels per station.
pub fn stations(stations: &[(String, u64, u64)]) -> DrawResult<String> {
    deployment_and_cancel_bars(
        "Inzetten en cancels per MMT-station",
        stations.to_vec(),
        false,
    )
}

/// Two series per label, (label, deployments, cancels): stacked or side by side.
fn deployment_and_cancel_bars(
    title: &str,
    rows: Vec<(String, u64, u64)>,
    stacked: bool,
) -> DrawResult<String> {
    let (labels, deployments, cancels) = rows.into_iter().fold(
        (Vec::new(), Vec::new(), Vec::new()),
        |(mut l, mut d, mut c), (label, deployed, cancelled)| {
            l.push(label);
            d.push(deployed);
            c.push(cancelled);
            (l, d, c)
        },
    );
    grouped_bars(
        title,
        &labels,
        &[
            ("inzet", DEPLOYMENT, deployments),
            ("cancel", CANCEL, cancels),
        ],
        "oproepen",
        stacked,
    )
}

/// A short label for a cancel reason symbol.
pub fn short_reason(symbol: &str) -> String {
    match symbol {
        "AMBULANCE_ASSESSED_NOT_NEEDED" => "niet nodig".into(),
        "NO_PATIENT_OR_MINOR_INJURY" => "licht letsel".into(),
        "PATIENT_DECEASED" => "overleden".into(),
        "MMT_UNAVAILABLE" => "MMT bezet".into(),
        "WEATHER" => "weer".into(),
        "DISPATCH_ERROR" => "meldkamerfout".into(),
        "OTHER" => "overig".into(),
        other => other.to_lowercase(),
    }
}
