//! The benchmark's plots, as PNG: throughput and peak RSS per workload, and the fast path and
//! heap efficiency, each a grid of panels with one horizontal bar per allocator.
//!
//! Text is drawn with plotters' pure-Rust `ab_glyph` backend and DejaVu Sans from the `dejavu`
//! crate, so no system font, fontconfig or freetype is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::bench::{Cell, Metric, Summary, sig3};

/// One bar: an allocator's figure and the text printed after it.
struct Bar {
    alloc: String,
    value: f64,
    text: String,
}

/// One panel: a workload's bars.
struct Panel {
    title: String,
    axis: &'static str,
    bars: Vec<Bar>,
}

const PANEL_WIDTH: u32 = 820;
const BAR_HEIGHT: u32 = 30;
const TITLE_HEIGHT: u32 = 56;
/// Font sizes: even, so that glyphs sit on a whole-pixel baseline (plotters' `ab_glyph`
/// drawing rounds each glyph's offset from half the size).
const TEXT: u32 = 16;
const CAPTION: u32 = 22;
const HEADING: u32 = 28;

/// Registers DejaVu Sans as plotters' "sans-serif" (once per process), the font every plot uses.
pub fn register_sans_serif() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // DejaVu Sans is a valid TrueType font; registering it cannot fail.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Writes the plots into `dir`; returns their paths.
pub fn charts(
    dir: &Path,
    cells: &[Cell],
    summaries: &[Vec<Summary>],
) -> Result<Vec<PathBuf>, String> {
    register_sans_serif();
    let panels = |metric: Metric, figure: &dyn Fn(&Summary) -> Option<(f64, String)>, axis| {
        cells
            .iter()
            .zip(summaries)
            .filter(|(c, _)| c.metric == metric)
            .map(|(cell, sums)| Panel {
                title: cell.label(),
                axis,
                bars: cell
                    .allocs
                    .iter()
                    .zip(sums)
                    .filter_map(|(alloc, s)| {
                        let (value, text) = figure(s)?;
                        let mark = if s.incomplete > 0 { " ‡" } else { "" };
                        Some(Bar {
                            alloc: alloc.clone(),
                            value,
                            text: format!("{text}{mark}"),
                        })
                    })
                    .collect(),
            })
            .filter(|p| !p.bars.is_empty())
            .collect::<Vec<_>>()
    };
    let throughput = panels(
        Metric::Throughput,
        &|s| s.value.map(|v| (v.median / 1e6, sig3(v.median / 1e6))),
        "million calls per second (higher is better)",
    );
    let rss = panels(
        Metric::Throughput,
        &|s| {
            s.rss_kib
                .map(|v| (v.median / 1024.0, sig3(v.median / 1024.0)))
        },
        "peak RSS, MiB (lower is better)",
    );
    let mut others = panels(
        Metric::PairCost,
        &|s| {
            let v = s.value?.median;
            let getcpu = s
                .getcpu_per_pair
                .map_or(String::new(), |g| format!(" ({g:.0} in sched_getcpu)"));
            Some((v, format!("{v:.1}{getcpu}")))
        },
        "instructions per alloc+free pair (lower is better)",
    );
    others.extend(panels(
        Metric::Efficiency,
        &|s| {
            s.value
                .map(|v| (v.median * 100.0, format!("{:.1}%", v.median * 100.0)))
        },
        "% of the region in use at the first failure (higher is better)",
    ));
    let mut written = Vec::new();
    for (file, title, panels) in [
        ("throughput.png", "Throughput per workload", throughput),
        ("peak-rss.png", "Peak RSS (VmHWM) per workload", rss),
        (
            "fast-path-and-heap-efficiency.png",
            "Fast path and heap efficiency",
            others,
        ),
    ] {
        if panels.is_empty() {
            continue;
        }
        let path = dir.join(file);
        draw(&path, title, &panels).map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The bar colour of an allocator: acealloc in warm colours, BALANCED the strongest.
fn colour(alloc: &str) -> RGBColor {
    match alloc {
        "acealloc-balanced" => RGBColor(214, 69, 20),
        "acealloc-fast" => RGBColor(240, 140, 60),
        "acealloc-lean" => RGBColor(245, 185, 90),
        "acealloc-balanced-1cpu" => RGBColor(170, 40, 40),
        "glibc" => RGBColor(120, 120, 120),
        "mimalloc" => RGBColor(40, 100, 200),
        "jemalloc" => RGBColor(120, 70, 170),
        "talc" => RGBColor(40, 150, 80),
        "linked-list" => RGBColor(140, 100, 60),
        "buddy-system" => RGBColor(30, 150, 160),
        "rlsf" => RGBColor(150, 150, 40),
        _ => RGBColor(0, 0, 0),
    }
}

fn draw(path: &Path, title: &str, panels: &[Panel]) -> Result<(), Box<dyn std::error::Error>> {
    let columns = panels.len().min(2);
    let rows = panels.len().div_ceil(columns);
    let most_bars = panels.iter().map(|p| p.bars.len()).max().unwrap_or(1) as u32;
    let panel_height = 110 + BAR_HEIGHT * most_bars;
    let size = (
        PANEL_WIDTH * columns as u32,
        TITLE_HEIGHT + panel_height * rows as u32,
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (heading, body) = root.split_vertically(TITLE_HEIGHT);
    heading.draw_text(
        title,
        &("sans-serif", HEADING).into_font().color(&BLACK),
        (16, 14),
    )?;
    for (area, panel) in body.split_evenly((rows, columns)).iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let n = panel.bars.len();
    let max = panel.bars.iter().map(|b| b.value).fold(0.0, f64::max);
    // Room after the longest bar for its text.
    let x_end = if max > 0.0 { max * 1.45 } else { 1.0 };
    // The first allocator on top.
    let row = |i: usize| n - 1 - i;
    let names: Vec<&str> = panel.bars.iter().map(|b| b.alloc.as_str()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", CAPTION))
        .margin(10)
        .x_label_area_size(48)
        .y_label_area_size(210)
        .build_cartesian_2d(0.0..x_end, (0..n).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < n => names[row(*i)].to_string(),
            _ => String::new(),
        })
        .x_labels(5)
        .x_label_formatter(&|x| {
            format!("{x:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        })
        .x_desc(panel.axis)
        .light_line_style(WHITE)
        .label_style(("sans-serif", TEXT))
        .axis_desc_style(("sans-serif", TEXT))
        .draw()?;
    chart.draw_series(panel.bars.iter().enumerate().map(|(i, bar)| {
        let r = row(i);
        let mut rect = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(r)),
                (bar.value, SegmentValue::Exact(r + 1)),
            ],
            colour(&bar.alloc).filled(),
        );
        rect.set_margin(3, 3, 0, 0);
        rect
    }))?;
    chart.draw_series(panel.bars.iter().enumerate().map(|(i, bar)| {
        Text::new(
            format!(" {}", bar.text),
            (bar.value, SegmentValue::CenterOf(row(i))),
            ("sans-serif", TEXT)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    Ok(())
}
