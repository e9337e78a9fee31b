//! The `compare --plot` chart: nDCG@20 per turn with its band, where the gold track lands,
//! and the two diversities per method, in one SVG or PNG.

use std::path::Path;

use anyhow::{Result, bail};
use music_crs_metrics::Comparison;

#[cfg(feature = "plot")]
pub(crate) fn draw(comparison: &Comparison, path: &Path) -> Result<()> {
    chart::draw(comparison, path)
}

#[cfg(not(feature = "plot"))]
pub(crate) fn draw(_comparison: &Comparison, path: &Path) -> Result<()> {
    bail!(
        "drawing {} needs the `plot` feature; rebuild with `cargo run --release --features plot \
         -- compare ...`",
        path.display()
    )
}

/// Whether `path` names a format the chart can be written in.
pub(crate) fn check_extension(path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") || e.eq_ignore_ascii_case("png") => Ok(()),
        _ => bail!(
            "--plot {}: the file must end in .svg or .png",
            path.display()
        ),
    }
}

#[cfg(feature = "plot")]
mod chart {
    use std::path::Path;
    use std::sync::Once;

    use anyhow::{Result, anyhow};
    use music_crs_metrics::Comparison;
    use plotters::coord::Shift;
    use plotters::prelude::*;
    use plotters::style::{FontStyle, register_font};

    /// The font every label is drawn with, shipped so the chart looks the same everywhere.
    static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
    const WIDTH: u32 = 1500;
    const HEIGHT: u32 = 1000;
    /// The metric drawn per turn.
    const TURN_METRIC: &str = "ndcg@20";

    fn register() -> Result<()> {
        static ONCE: Once = Once::new();
        let mut result = Ok(());
        ONCE.call_once(|| {
            result = register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| anyhow!("the shipped font could not be read"));
        });
        result
    }

    fn color(index: usize) -> RGBColor {
        // Colour-blind-safe (Okabe–Ito).
        const PALETTE: [RGBColor; 8] = [
            RGBColor(0, 114, 178),
            RGBColor(230, 159, 0),
            RGBColor(0, 158, 115),
            RGBColor(204, 121, 167),
            RGBColor(86, 180, 233),
            RGBColor(213, 94, 0),
            RGBColor(240, 228, 66),
            RGBColor(0, 0, 0),
        ];
        PALETTE[index % PALETTE.len()]
    }

    /// Names shortened so labels never run into each other.
    fn short(name: &str) -> String {
        if name.chars().count() <= 18 {
            name.to_owned()
        } else {
            name.chars().take(17).collect::<String>() + "…"
        }
    }

    pub(super) fn draw(comparison: &Comparison, path: &Path) -> Result<()> {
        register()?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let png = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(".music-crs-")
            .suffix(if png { ".png" } else { ".svg" });
        // Not the temporary file's private 0600: the usual 0644 under umask.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o644));
        }
        let temp = builder.tempfile_in(dir)?;
        if png {
            let root = BitMapBackend::new(temp.path(), (WIDTH, HEIGHT)).into_drawing_area();
            panels(comparison, &root)?;
            root.present().map_err(|e| anyhow!("{e}"))?;
        } else {
            let root = SVGBackend::new(temp.path(), (WIDTH, HEIGHT)).into_drawing_area();
            panels(comparison, &root)?;
            root.present().map_err(|e| anyhow!("{e}"))?;
        }
        temp.persist(path)?;
        Ok(())
    }

    fn panels<DB: DrawingBackend>(
        comparison: &Comparison,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the chart: {e:?}");
        root.fill(&WHITE).map_err(err)?;
        let title = format!(
            "{} methods, {} turns of {} sessions ({:.0}% bootstrap intervals over sessions)",
            comparison.methods.len(),
            comparison.turns,
            comparison.sessions,
            comparison.params.resample.confidence * 100.0
        );
        let root = root.titled(&title, ("sans-serif", 26)).map_err(err)?;
        let (top, bottom) = root.split_vertically(HEIGHT as i32 / 2);
        let lower = bottom.split_evenly((1, 3));
        per_turn(comparison, &top).map_err(err)?;
        gold_ranks(comparison, &lower[0]).map_err(err)?;
        diversity(
            comparison,
            &lower[1],
            "catalog_diversity",
            "Catalog diversity",
        )
        .map_err(err)?;
        diversity(
            comparison,
            &lower[2],
            "lexical_diversity",
            "Lexical diversity (Distinct-2)",
        )
        .map_err(err)?;
        Ok(())
    }

    type DrawResult<DB> =
        std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

    fn per_turn<DB: DrawingBackend>(
        c: &Comparison,
        area: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        let turns: Vec<u32> = c.methods[0]
            .per_turn
            .iter()
            .filter(|t| t.metric == TURN_METRIC)
            .map(|t| t.turn_number)
            .collect();
        let (first, last) = (
            turns.first().copied().unwrap_or(1) as f64,
            turns.last().copied().unwrap_or(1) as f64,
        );
        let top = c
            .methods
            .iter()
            .flat_map(|m| m.per_turn.iter().filter(|t| t.metric == TURN_METRIC))
            .map(|t| t.interval.high)
            .fold(0.0_f64, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption("nDCG@20 per turn, with its 95% band", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(first - 0.2..last + 0.2, 0.0..(top * 1.15).max(0.01))?;
        chart
            .configure_mesh()
            .x_desc("turn")
            .y_desc("nDCG@20")
            .x_labels(turns.len().max(2))
            .x_label_formatter(&|x: &f64| format!("{}", x.round() as i64))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()?;
        for (i, method) in c.methods.iter().enumerate() {
            let points: Vec<_> = method
                .per_turn
                .iter()
                .filter(|t| t.metric == TURN_METRIC)
                .collect();
            let color = color(i);
            let band: Vec<(f64, f64)> = points
                .iter()
                .map(|t| (t.turn_number as f64, t.interval.high))
                .chain(
                    points
                        .iter()
                        .rev()
                        .map(|t| (t.turn_number as f64, t.interval.low)),
                )
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.15))))?;
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|t| (t.turn_number as f64, t.value)),
                    color.stroke_width(3),
                ))?
                .label(short(&method.name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
            chart.draw_series(
                points
                    .iter()
                    .map(|t| Circle::new((t.turn_number as f64, t.value), 4, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 16))
            .draw()?;
        Ok(())
    }

    fn gold_ranks<DB: DrawingBackend>(
        c: &Comparison,
        area: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        let shares: Vec<Vec<f64>> = c
            .methods
            .iter()
            .map(|m| {
                let total =
                    (m.gold_rank_counts.iter().sum::<usize>() + m.gold_missed).max(1) as f64;
                m.gold_rank_counts
                    .iter()
                    .map(|&n| n as f64 / total)
                    .collect()
            })
            .collect();
        let missed: Vec<String> = c
            .methods
            .iter()
            .map(|m| {
                let total = (m.gold_rank_counts.iter().sum::<usize>() + m.gold_missed).max(1);
                format!("{:.1}%", 100.0 * m.gold_missed as f64 / total as f64)
            })
            .collect();
        let top = shares.iter().flatten().copied().fold(0.0_f64, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption("Where the gold track lands", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(0.5..20.5, 0.0..(top * 1.15).max(0.01))?;
        chart
            .configure_mesh()
            .x_desc(format!("gold track rank (missed: {})", missed.join(" / ")))
            .y_desc("share of turns")
            .x_labels(10)
            .x_label_formatter(&|x: &f64| format!("{}", x.round() as i64))
            .y_label_formatter(&|y| format!("{:.1}%", y * 100.0))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 14))
            .draw()?;
        for (i, method_shares) in shares.iter().enumerate() {
            let color = color(i);
            chart.draw_series(LineSeries::new(
                method_shares
                    .iter()
                    .enumerate()
                    .map(|(r, s)| (r as f64 + 1.0, *s)),
                color.stroke_width(2),
            ))?;
        }
        Ok(())
    }

    fn diversity<DB: DrawingBackend>(
        c: &Comparison,
        area: &DrawingArea<DB, Shift>,
        metric: &str,
        title: &str,
    ) -> DrawResult<DB> {
        let values: Vec<_> = c.methods.iter().map(|m| m.estimate(metric)).collect();
        let top = values
            .iter()
            .flatten()
            .map(|e| e.interval.high.max(e.value))
            .fold(0.0_f64, f64::max);
        let n = c.methods.len();
        let names: Vec<String> = c.methods.iter().map(|m| short(&m.name)).collect();
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..(top * 1.2).max(0.01))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    names.get(*i).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .y_label_formatter(&|y| format!("{y:.3}"))
            .label_style(("sans-serif", 14))
            .draw()?;
        for (i, estimate) in values.iter().enumerate() {
            let Some(e) = estimate else { continue };
            chart.draw_series(
                Histogram::vertical(&chart)
                    .margin(18)
                    .style(color(i).mix(0.8).filled())
                    .data(std::iter::once((i, e.value))),
            )?;
            chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                SegmentValue::CenterOf(i),
                e.interval.low,
                e.value,
                e.interval.high,
                BLACK.stroke_width(2),
                12,
            )))?;
        }
        Ok(())
    }
}
