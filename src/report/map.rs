//! Maps and ranked bar charts for the municipality report: the municipal boundaries from
//! `gemeenten_2025.topojson` in `enrich.reference_dir` (decoded with the `topojson` crate), drawn
//! as an SVG choropleth (one `<path>` per municipality) in an oblique stereographic projection
//! centred on Amersfoort, the projection of the Dutch national grid (RD), here on a sphere: at the
//! scale of a page it is indistinguishable from RD New. Bar charts are drawn with plotters in the
//! factsheet's chart style.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use topojson::{TopoJson, Value as TopoValue};

/// The boundaries file in `enrich.reference_dir`.
pub const BOUNDARIES_FILE: &str = "gemeenten_2025.topojson";
/// The TopoJSON object holding the municipalities.
pub const OBJECT: &str = "gemeenten";
/// The credit every map drawn from the boundaries carries.
pub const CREDIT: &str = "Bron: CBS, PDOK";

/// Why the municipal boundaries could not be read or a map or chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The TopoJSON file could not be read.
    #[error("{path}: cannot read the municipal boundaries: {source}")]
    Read {
        /// The file (`gemeenten_2025.topojson` in `enrich.reference_dir`).
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a TopoJSON topology.
    #[error("{path}: not a TopoJSON topology: {detail}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser found.
        detail: String,
    },
    /// One municipality's geometry is unusable.
    #[error("{path}: object {OBJECT:?}, geometry {index} (id {id}): {detail}")]
    Feature {
        /// The file.
        path: String,
        /// Index of the geometry within the object.
        index: usize,
        /// The geometry's id as written (its municipality code), or `none`.
        id: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A bar chart could not be drawn.
    #[error("chart: {0}")]
    Chart(String),
}

/// One municipality's outline: polygons of rings of (longitude, latitude) in WGS84.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// GMxxxx.
    pub code: String,
    /// Municipality name.
    pub name: String,
    /// The municipality's polygons (several for islands and exclaves).
    pub polygons: Vec<Polygon>,
}

/// Rings of points: the outer ring first, then any holes.
pub type Polygon = Vec<Vec<(f64, f64)>>;

/// The municipal boundaries, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Where they were read from (for messages).
    pub source: String,
    /// One outline per municipality, in file order.
    pub shapes: Vec<Shape>,
}

impl Topology {
    /// Read `gemeenten_2025.topojson` from the reference directory.
    pub fn load(reference_dir: &Path) -> Result<Topology, MapError> {
        let path = reference_dir.join(BOUNDARIES_FILE);
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| MapError::Read {
            path: shown.clone(),
            source,
        })?;
        Topology::parse(&text, &shown)
    }

    /// Decode a TopoJSON text; `source` names it in errors. Every geometry of the `gemeenten`
    /// object must be a (multi)polygon with properties `gemeentecode` (unique) and `gemeentenaam`.
    pub fn parse(text: &str, source: &str) -> Result<Topology, MapError> {
        let parse_err = |detail: String| MapError::Parse {
            path: source.to_string(),
            detail,
        };
        let topo = match serde_json::from_str::<TopoJson>(text) {
            Ok(TopoJson::Topology(t)) => t,
            Ok(TopoJson::Geometry(_)) => {
                return Err(parse_err("a geometry, not a Topology".into()));
            }
            Err(e) => return Err(parse_err(e.to_string())),
        };
        let Some(object) = topo.objects.iter().find(|o| o.name == OBJECT) else {
            return Err(parse_err(format!(
                "no object {OBJECT:?} (objects: {})",
                topo.list_names().join(", ")
            )));
        };
        let TopoValue::GeometryCollection(geometries) = &object.geometry.value else {
            return Err(parse_err(format!(
                "object {OBJECT:?} is not a GeometryCollection"
            )));
        };
        for (i, arc) in topo.arcs.iter().enumerate() {
            if arc
                .iter()
                .any(|p| p.len() < 2 || p.iter().any(|v| !v.is_finite()))
            {
                return Err(parse_err(format!(
                    "arc {i} has a position without two finite numbers"
                )));
            }
        }
        // Validate before converting: the crate indexes arcs without checking.
        let mut seen = HashSet::new();
        for (index, g) in geometries.iter().enumerate() {
            let id =
                g.id.as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "none".into());
            let err = |detail: String| MapError::Feature {
                path: source.to_string(),
                index,
                id: id.clone(),
                detail,
            };
            let rings: Vec<&Vec<i32>> = match &g.value {
                TopoValue::Polygon(rings) => rings.iter().collect(),
                TopoValue::MultiPolygon(polys) => polys.iter().flatten().collect(),
                _ => return Err(err("not a Polygon or MultiPolygon".into())),
            };
            for ix in rings.iter().flat_map(|r| r.iter()) {
                let arc = if *ix < 0 { !*ix } else { *ix } as usize;
                if arc >= topo.arcs.len() {
                    return Err(err(format!(
                        "arc index {ix} out of range ({} arcs)",
                        topo.arcs.len()
                    )));
                }
            }
            let prop = |key: &str| {
                g.properties
                    .as_ref()
                    .and_then(|p| p.get(key))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| err(format!("property {key:?} missing or not a string")))
            };
            let code = prop("gemeentecode")?;
            prop("gemeentenaam")?;
            let valid = code.len() == 6
                && code.starts_with("GM")
                && code[2..].bytes().all(|b| b.is_ascii_digit());
            if !valid {
                return Err(err(format!("gemeentecode {code:?} is not GMxxxx")));
            }
            if !seen.insert(code.clone()) {
                return Err(err(format!("gemeentecode {code} appears twice")));
            }
        }
        let features = topojson::to_geojson(&topo, OBJECT).map_err(|e| parse_err(e.to_string()))?;
        let mut shapes = Vec::with_capacity(features.features.len());
        for f in features.features {
            let props = f.properties.unwrap_or_default();
            let text = |k: &str| {
                props
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let ring = |r: &Vec<Vec<f64>>| r.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>();
            let polygons = match f.geometry.map(|g| g.value) {
                Some(geojson::Value::Polygon(p)) => vec![p.iter().map(ring).collect()],
                Some(geojson::Value::MultiPolygon(m)) => {
                    m.iter().map(|p| p.iter().map(ring).collect()).collect()
                }
                _ => Vec::new(),
            };
            shapes.push(Shape {
                code: text("gemeentecode"),
                name: text("gemeentenaam"),
                polygons,
            });
        }
        Ok(Topology {
            source: source.to_string(),
            shapes,
        })
    }
}

/// Oblique stereographic projection on the unit sphere centred on Amersfoort (52.15517 N,
/// 5.38721 E), the centre of the Dutch national grid (RD). Returns (east, north).
pub fn project(lon: f64, lat: f64) -> (f64, f64) {
    let (lat0, lon0) = (52.155_17f64.to_radians(), 5.387_21f64.to_radians());
    let (phi, dl) = (lat.to_radians(), lon.to_radians() - lon0);
    let k = 2.0 / (1.0 + lat0.sin() * phi.sin() + lat0.cos() * phi.cos() * dl.cos());
    (
        k * phi.cos() * dl.sin(),
        k * (lat0.cos() * phi.sin() - lat0.sin() * phi.cos() * dl.cos()),
    )
}

/// What a municipality on the map shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    /// A share 0..=1, coloured by [`CLASSES`].
    Share(f64),
    /// No published value: hatched, the reason on hover.
    Withheld,
    /// Not part of this report (for example outside the selected region): plain grey.
    OutOfScope,
}

/// A municipality's fill and its hover text (the `<title>`).
#[derive(Debug, Clone, PartialEq)]
pub struct MapEntry {
    /// How the municipality is filled.
    pub fill: Fill,
    /// The hover text: the name and the figure or why there is none.
    pub title: String,
}

/// Colour classes of the share within 15 minutes: (lower bound, colour, legend text). The last
/// class starts at the legal norm (95%, a regional norm, shown for orientation).
pub const CLASSES: [(f64, &str, &str); 6] = [
    (0.0, "#b2182b", "minder dan 75%"),
    (0.75, "#ef8a62", "75% tot 80%"),
    (0.80, "#fddbc7", "80% tot 85%"),
    (0.85, "#d1e5f0", "85% tot 90%"),
    (0.90, "#67a9cf", "90% tot 95%"),
    (0.95, "#2166ac", "95% of meer"),
];

/// The colour of a share.
pub fn class_colour(share: f64) -> &'static str {
    CLASSES
        .iter()
        .rev()
        .find(|c| share >= c.0)
        .map(|c| c.1)
        .unwrap_or(CLASSES[0].1)
}

/// Escape text for HTML and SVG.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const MAP_WIDTH: f64 = 620.0;
const LEGEND_HEIGHT: f64 = 190.0;

/// The choropleth as an inline `<svg id="kaart">`: one `<path class="gemeente">` per municipality
/// of the topology, filled by `entries` (a municipality missing there is hatched as withheld with
/// the title "geen gegevens"), and a legend.
pub fn choropleth(
    topology: &Topology,
    entries: &BTreeMap<String, MapEntry>,
    title: &str,
) -> String {
    let projected: Vec<Vec<Polygon>> = topology
        .shapes
        .iter()
        .map(|s| {
            s.polygons
                .iter()
                .map(|p| {
                    p.iter()
                        .map(|r| r.iter().map(|&(lon, lat)| project(lon, lat)).collect())
                        .collect()
                })
                .collect()
        })
        .collect();
    let pts = || projected.iter().flatten().flatten().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let margin = 10.0;
    let scale = (MAP_WIDTH - 2.0 * margin) / (x1 - x0).max(f64::EPSILON);
    let map_height = (y1 - y0) * scale + 2.0 * margin;
    let height = map_height + LEGEND_HEIGHT;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"kaart\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {w} {h:.0}\" \
         width=\"{w}\" height=\"{h:.0}\" font-family=\"sans-serif\" font-size=\"13\">\
         <title>{t}</title>\
         <defs><pattern id=\"arcering\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" \
         patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#f2f2f2\"/>\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#888\" stroke-width=\"2\"/></pattern></defs>\
         <g stroke=\"#fff\" stroke-width=\"0.4\" stroke-linejoin=\"round\">",
        w = MAP_WIDTH,
        h = height,
        t = escape(title)
    );
    let fallback = MapEntry {
        fill: Fill::Withheld,
        title: String::new(),
    };
    for (shape, polys) in topology.shapes.iter().zip(&projected) {
        let entry = entries.get(&shape.code).unwrap_or(&fallback);
        let mut d = String::new();
        for ring in polys.iter().flatten() {
            for (i, &(x, y)) in ring.iter().enumerate() {
                let px = margin + (x - x0) * scale;
                let py = margin + (y1 - y) * scale;
                let _ = write!(d, "{}{px:.1},{py:.1}", if i == 0 { "M" } else { "L" });
            }
            d.push('Z');
        }
        let (fill, class) = match entry.fill {
            Fill::Share(v) => (class_colour(v).to_string(), "gemeente"),
            Fill::Withheld => ("url(#arcering)".to_string(), "gemeente geen-waarde"),
            Fill::OutOfScope => ("#d9d9d9".to_string(), "gemeente buiten-rapport"),
        };
        let hover = if entry.title.is_empty() {
            format!(
                "{} ({}): geen gegevens in dit rapport",
                shape.name, shape.code
            )
        } else {
            entry.title.clone()
        };
        let _ = write!(
            svg,
            "<path class=\"{class}\" data-code=\"{code}\" fill=\"{fill}\" fill-rule=\"evenodd\" d=\"{d}\">\
             <title>{hover}</title></path>",
            code = escape(&shape.code),
            hover = escape(&hover)
        );
    }
    svg.push_str("</g>");
    // Legend.
    let ly = map_height + 8.0;
    let _ = write!(
        svg,
        "<g class=\"legenda\"><text x=\"{margin}\" y=\"{:.0}\" font-weight=\"bold\">A1-inzetten binnen 15 minuten ter plaatse</text>",
        ly + 12.0
    );
    let mut row = 0.0;
    for (_, colour, text) in CLASSES.iter().rev() {
        let y = ly + 22.0 + row * 20.0;
        let _ = write!(
            svg,
            "<rect x=\"{margin}\" y=\"{y:.0}\" width=\"18\" height=\"14\" fill=\"{colour}\" stroke=\"#999\"/>\
             <text x=\"{:.0}\" y=\"{:.0}\">{}</text>",
            margin + 26.0,
            y + 12.0,
            escape(text)
        );
        row += 1.0;
    }
    let col = margin + 230.0;
    let _ = write!(
        svg,
        "<rect x=\"{col}\" y=\"{y:.0}\" width=\"18\" height=\"14\" fill=\"url(#arcering)\" stroke=\"#999\"/>\
         <text x=\"{tx:.0}\" y=\"{ty:.0}\">geen gepubliceerde waarde (reden bij aanwijzen)</text>\
         <rect x=\"{col}\" y=\"{y2:.0}\" width=\"18\" height=\"14\" fill=\"#d9d9d9\" stroke=\"#999\"/>\
         <text x=\"{tx:.0}\" y=\"{ty2:.0}\">buiten dit rapport</text>\
         <text x=\"{col}\" y=\"{ty3:.0}\" fill=\"#555\">{credit}</text></g></svg>",
        y = ly + 22.0,
        tx = col + 26.0,
        ty = ly + 34.0,
        y2 = ly + 42.0,
        ty2 = ly + 54.0,
        ty3 = ly + 82.0,
        credit = escape(CREDIT)
    );
    svg
}

/// One bar of a ranked bar chart: a value in seconds, or the reason there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Label of the bar, e.g. the area's name.
    pub label: String,
    /// The value in seconds; `None` when withheld.
    pub seconds: Option<f64>,
    /// Shown instead of a bar when `seconds` is `None`.
    pub note: String,
}

const BAR_BLUE: RGBColor = RGBColor(0, 94, 160);
const NORM_RED: RGBColor = RGBColor(200, 50, 60);

/// "16:51" for 1011 seconds.
pub fn minutes_seconds(seconds: f64) -> String {
    let s = seconds.round().max(0.0) as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// A horizontal bar chart, ranked from the shortest time down, the bars without a value last
/// with their note, and a vertical line at the norm.
pub fn ranked_bars(caption: &str, bars: &[Bar], norm_seconds: u32) -> Result<String, MapError> {
    draw_bars(caption, &rank(bars), f64::from(norm_seconds) / 60.0)
        .map_err(|e| MapError::Chart(e.to_string()))
}

/// The bars in chart order: by time ascending (ties by label), then those without a value.
pub fn rank(bars: &[Bar]) -> Vec<&Bar> {
    let mut ranked: Vec<&Bar> = bars.iter().filter(|b| b.seconds.is_some()).collect();
    ranked.sort_by(|a, b| {
        a.seconds
            .partial_cmp(&b.seconds)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.label.cmp(&b.label))
    });
    ranked.extend(bars.iter().filter(|b| b.seconds.is_none()));
    ranked
}

fn draw_bars(
    caption: &str,
    bars: &[&Bar],
    norm_minutes: f64,
) -> Result<String, Box<dyn std::error::Error>> {
    let n = bars.len().max(1) as u32;
    let height = 90 + 22 * n;
    let top = bars
        .iter()
        .filter_map(|b| b.seconds)
        .fold(norm_minutes, |m, s| m.max(s / 60.0))
        * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(190)
            // A segmented 0..end has end + 1 segments: one per bar.
            .build_cartesian_2d(0f64..top, (0u32..n - 1).into_segmented())?;
        let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n as usize)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => n
                    .checked_sub(i + 1)
                    .and_then(|k| labels.get(k as usize))
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("minuten (95e percentiel, A1)")
            .draw()?;
        let font = ("sans-serif", 13).into_font();
        for (i, bar) in bars.iter().enumerate() {
            let row = n - 1 - i as u32;
            match bar.seconds {
                Some(s) => {
                    let mut rect = Rectangle::new(
                        [
                            (0.0, SegmentValue::Exact(row)),
                            (s / 60.0, SegmentValue::Exact(row + 1)),
                        ],
                        BAR_BLUE.filled(),
                    );
                    rect.set_margin(3, 3, 0, 0);
                    chart.draw_series(std::iter::once(rect))?;
                    chart.draw_series(std::iter::once(Text::new(
                        format!(" {}", minutes_seconds(s)),
                        (s / 60.0, SegmentValue::CenterOf(row)),
                        font.clone()
                            .color(&BLACK)
                            .pos(Pos::new(HPos::Left, VPos::Center)),
                    )))?;
                }
                None => {
                    chart.draw_series(std::iter::once(Text::new(
                        format!(" {}", bar.note),
                        (0.0, SegmentValue::CenterOf(row)),
                        font.clone()
                            .color(&RGBColor(110, 110, 110))
                            .pos(Pos::new(HPos::Left, VPos::Center)),
                    )))?;
                }
            }
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![
                    (norm_minutes, SegmentValue::Exact(0)),
                    (norm_minutes, SegmentValue::Exact(n)),
                ],
                NORM_RED.stroke_width(2),
            )))?
            .label(format!("norm {}", minutes_seconds(norm_minutes * 60.0)))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], NORM_RED.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Topology {
        Topology::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference")).unwrap()
    }

    #[test]
    fn shipped_boundaries_have_342_municipalities_inside_the_netherlands() {
        let t = shipped();
        assert_eq!(t.shapes.len(), 342);
        let codes: HashSet<_> = t.shapes.iter().map(|s| s.code.as_str()).collect();
        assert_eq!(codes.len(), 342);
        let ams = t.shapes.iter().find(|s| s.code == "GM0363").unwrap();
        assert_eq!(ams.name, "Amsterdam");
        for s in &t.shapes {
            assert!(!s.polygons.is_empty(), "{}", s.code);
            for &(lon, lat) in s.polygons.iter().flatten().flatten() {
                assert!(
                    (3.3..7.3).contains(&lon) && (50.7..53.6).contains(&lat),
                    "{}",
                    s.code
                );
            }
        }
    }

    #[test]
    fn boundaries_match_the_current_municipalities_of_the_reference_tables() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference");
        let reference = crate::enrich::reference::Reference::load(&dir).unwrap();
        let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let current: BTreeMap<String, String> = reference
            .municipalities
            .keys()
            .filter_map(|c| {
                Some((
                    c.clone(),
                    reference.municipality_on(c, date)?.0.name.clone(),
                ))
            })
            .collect();
        let shapes: BTreeMap<String, String> = shipped()
            .shapes
            .into_iter()
            .map(|s| (s.code, s.name))
            .collect();
        assert_eq!(shapes, current);
    }

    #[test]
    fn projection_is_centred_on_amersfoort_and_north_is_up() {
        let (x, y) = project(5.387_21, 52.155_17);
        assert!(x.abs() < 1e-12 && y.abs() < 1e-12);
        let (_, north) = project(5.387_21, 53.0);
        let (east, _) = project(6.0, 52.155_17);
        assert!(north > 0.0 && east > 0.0);
    }

    #[test]
    fn bad_boundaries_are_named() {
        let text = r#"{"type":"Topology","arcs":[[[0,0],[1,0],[0,1]]],
            "objects":{"gemeenten":{"type":"GeometryCollection","geometries":[
            {"type":"Polygon","arcs":[[0]],"id":"GM0001","properties":{"gemeentecode":"GM0001","gemeentenaam":"A"}},
            {"type":"Polygon","arcs":[[5]],"id":"GM0002","properties":{"gemeentecode":"GM0002","gemeentenaam":"B"}}]}}}"#;
        let e = Topology::parse(text, "x.topojson").unwrap_err().to_string();
        assert!(
            e.contains("x.topojson") && e.contains("geometry 1") && e.contains("arc index 5"),
            "{e}"
        );
        let e = Topology::parse(&text.replace("GM0002", "GM0001"), "x.topojson")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("appears twice") || e.contains("arc index"),
            "{e}"
        );
        let e = Topology::parse(&text.replace("gemeenten", "muni"), "x.topojson")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no object \"gemeenten\""), "{e}");
        let e = Topology::parse("{}", "x.topojson").unwrap_err().to_string();
        assert!(e.contains("x.topojson: not a TopoJSON topology"), "{e}");
    }

    #[test]
    fn choropleth_has_one_path_per_municipality_and_hatches_the_withheld() {
        let t = shipped();
        let mut entries = BTreeMap::new();
        entries.insert(
            "GM0363".to_string(),
            MapEntry {
                fill: Fill::Share(0.96),
                title: "Amsterdam: 96%".into(),
            },
        );
        entries.insert(
            "GM0088".to_string(),
            MapEntry {
                fill: Fill::Withheld,
                title: "Schiermonnikoog: te weinig inzetten".into(),
            },
        );
        let svg = choropleth(&t, &entries, "kaart");
        assert_eq!(svg.matches("<path ").count(), 342);
        assert!(svg.contains("fill=\"#2166ac\""));
        assert!(svg.contains("<title>Schiermonnikoog: te weinig inzetten</title>"));
        assert!(svg.contains("<pattern id=\"arcering\""));
        // 341 municipalities without an entry or withheld, and the legend's swatch.
        assert_eq!(svg.matches("url(#arcering)").count(), 341 + 1);
        assert!(svg.contains(CREDIT));
    }

    #[test]
    fn ranked_bars_order_by_time_and_show_the_withheld_with_their_note() {
        let bars = vec![
            Bar {
                label: "Traag".into(),
                seconds: Some(1100.0),
                note: String::new(),
            },
            Bar {
                label: "Klein".into(),
                seconds: None,
                note: "afgeschermd: te weinig inzetten".into(),
            },
            Bar {
                label: "Snel".into(),
                seconds: Some(700.0),
                note: String::new(),
            },
        ];
        let order: Vec<&str> = rank(&bars).iter().map(|b| b.label.as_str()).collect();
        assert_eq!(order, ["Snel", "Traag", "Klein"]);
        let svg = ranked_bars("VR01", &bars, 900).unwrap();
        for text in [
            "Snel",
            "Traag",
            "Klein",
            "afgeschermd: te weinig inzetten",
            "18:20",
            "11:40",
            "norm 15:00",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert_eq!(minutes_seconds(1011.0), "16:51");
    }
}
