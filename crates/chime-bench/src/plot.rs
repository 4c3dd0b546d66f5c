//! `--plot FILE.svg`: the scale curve (workload 6) drawn with plotters' SVG backend.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::ScalePoint;

/// Draws arm cost and resident bytes per timer against pending timers (log scale) into `path`.
pub(crate) fn draw(curve: &[ScalePoint], path: &Path) -> Result<(), String> {
    if curve.is_empty() {
        return Err("no scale curve measured (workload 6 did not run)".into());
    }
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(500);
    let lo = curve.iter().map(|p| p.pending).min().unwrap_or(1) as f64;
    let hi = curve.iter().map(|p| p.pending).max().unwrap_or(10) as f64;
    let xs = (lo / 2.0)..(hi * 2.0);
    panel(&left, curve, xs.clone(), ("chime: arm cost", "ns per arm"), |p| p.arm_ns, BLUE)?;
    panel(
        &right,
        curve,
        xs,
        ("chime: resident memory", "bytes per pending timer"),
        |p| p.bytes_per_timer,
        RED,
    )?;
    root.present().map_err(|e| e.to_string())
}

/// One chart: `value` of each point against its pending count.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    curve: &[ScalePoint],
    xs: Range<f64>,
    (title, y_desc): (&str, &str),
    value: fn(&ScalePoint) -> f64,
    color: RGBColor,
) -> Result<(), String> {
    let top = curve.iter().map(value).fold(0.0, f64::max) * 1.2 + 1.0;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xs.log_scale(), 0.0..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("pending timers")
        .y_desc(y_desc)
        .x_label_formatter(&|x| crate::measure::size_label(x.round() as usize))
        .draw()
        .map_err(|e| e.to_string())?;
    let points: Vec<(f64, f64)> = curve.iter().map(|p| (p.pending as f64, value(p))).collect();
    chart.draw_series(LineSeries::new(points.clone(), &color)).map_err(|e| e.to_string())?;
    chart
        .draw_series(points.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled())))
        .map_err(|e| e.to_string())?;
    Ok(())
}
