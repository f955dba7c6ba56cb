//! The municipality report page in a real browser (Debian's headless Chromium): the page from a
//! synthetic report over all 342 municipalities loads without console errors or exceptions, the
//! map has exactly one shape per municipality and every region's chart is drawn. And the check
//! itself can fail: a page with a script error, a missing shape or an empty chart is refused.
//! The factsheet page is checked in `tests/factsheet_acceptance.rs` from real ingested data.

mod common;

use std::path::Path;

use dispatch_ingest::enrich::reference::Reference;
use dispatch_ingest::report::map::Topology;
use dispatch_ingest::report::municipalities::html;

use common::browser::{check_page, check_page_drawn};

const MAP: &str = "svg#kaart path.gemeente";
const CHARTS: &str = "figure.regio-grafiek svg";

fn page() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference");
    let reference = Reference::load(&dir).unwrap();
    let topology = Topology::load(&dir).unwrap();
    assert_eq!(topology.shapes.len(), 342);
    html::render(&html::synthetic_report(&reference, 2025), &topology).unwrap()
}

#[test]
fn municipality_report_loads_cleanly_with_one_shape_per_municipality() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gemeenten-2025.html");
    let html = page();
    // The hatched municipalities (no published value) are shapes too, with their hover text.
    let hatched = html.matches("class=\"gemeente geen-waarde\"").count();
    assert!(hatched > 5, "{hatched}");
    std::fs::write(&file, &html).unwrap();
    let hatched_titles = "svg#kaart path.geen-waarde > title";
    let check = check_page_drawn(
        &file,
        &[(CHARTS, 25), (hatched_titles, hatched)],
        &[(MAP, 342)],
        &["svg#kaart", CHARTS],
    );
    assert!(check.passed, "{}\n{:#?}", check.stderr, check.summary);
    assert_eq!(check.problems(), Vec::<String>::new());
    assert_eq!(check.summary["drawn"][MAP]["drawn"], 342);
}

#[test]
fn the_browser_check_fails_on_a_script_error_a_missing_shape_or_an_empty_chart() {
    let dir = tempfile::tempdir().unwrap();
    let good = page();

    let broken = good.replace(
        "</body>",
        "<script>document.getElementById('kaart').notAFunction();</script></body>",
    );
    let file = dir.path().join("script-error.html");
    std::fs::write(&file, broken).unwrap();
    let check = check_page(&file, &[(MAP, 342)], &[]);
    assert!(
        !check.passed,
        "a page with a JS error passed: {:#?}",
        check.summary
    );
    assert!(
        check
            .problems()
            .iter()
            .any(|p| p.contains("uncaught exception") && p.contains("notAFunction")),
        "{:#?}",
        check.problems()
    );

    let logged = good.replace("</body>", "<script>console.error('kapot');</script></body>");
    let file = dir.path().join("console-error.html");
    std::fs::write(&file, logged).unwrap();
    let check = check_page(&file, &[(MAP, 342)], &[]);
    assert!(!check.passed);
    assert!(
        check.problems().iter().any(|p| p == "console error: kapot"),
        "{:#?}",
        check.problems()
    );

    // One municipality's shape removed.
    let start = good.find("<path class=\"gemeente").unwrap();
    let end = start + good[start..].find("</path>").unwrap() + "</path>".len();
    let missing = format!("{}{}", &good[..start], &good[end..]);
    let file = dir.path().join("missing-shape.html");
    std::fs::write(&file, missing).unwrap();
    let check = check_page(&file, &[(MAP, 342)], &[]);
    assert!(!check.passed);
    assert_eq!(check.count(MAP), Some(341));
    assert!(
        check
            .problems()
            .iter()
            .any(|p| p.contains("341 elements, expected 342")),
        "{:#?}",
        check.problems()
    );

    // One municipality's outline present but empty: counted, yet not drawn.
    let start = good.find("<path class=\"gemeente").unwrap();
    let d = start + good[start..].find(" d=\"").unwrap() + " d=\"".len();
    let d_end = d + good[d..].find('"').unwrap();
    let undrawn = format!("{}{}", &good[..d], &good[d_end..]);
    let file = dir.path().join("undrawn-shape.html");
    std::fs::write(&file, undrawn).unwrap();
    let check = check_page_drawn(&file, &[], &[(MAP, 342)], &[]);
    assert!(!check.passed);
    assert!(
        check
            .problems()
            .iter()
            .any(|p| p.contains("342 elements, 341 of them drawn")),
        "{:#?}",
        check.problems()
    );

    // One region's chart emptied: present but nothing drawn.
    let start = good.find("<figure class=\"regio-grafiek\">").unwrap();
    let svg_start = start + good[start..].find("<svg").unwrap();
    let svg_end = svg_start + good[svg_start..].find("</svg>").unwrap() + "</svg>".len();
    let empty = format!(
        "{}<svg width=\"760\" height=\"200\"></svg>{}",
        &good[..svg_start],
        &good[svg_end..]
    );
    let file = dir.path().join("empty-chart.html");
    std::fs::write(&file, empty).unwrap();
    let check = check_page(&file, &[(CHARTS, 25)], &[CHARTS]);
    assert!(!check.passed);
    assert!(
        check.problems().iter().any(|p| p.contains("not rendered")),
        "{:#?}",
        check.problems()
    );
}
