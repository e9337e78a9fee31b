//! `music-crs compare`: several prediction files against one ground truth, with bootstrap
//! intervals, paired tests against a baseline and a plot.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use comfy_table::{Table, presets};
use music_crs::config::CrsConfig;
use music_crs_metrics::stats::ResampleParams;
use music_crs_metrics::{
    CompareParams, Comparison, EvaluationParams, GroundTruth, MethodPredictions, PredictionFile,
    compare,
};
use tracing::info;

use super::{create_parent_dir, first_sessions, load_ground_truth, refuse_overwriting_inputs};
use crate::args::GroundTruthArgs;

/// How the comparison is printed or saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned tables and one verdict per test.
    Text,
    /// Markdown tables (for docs and issues).
    Markdown,
    /// One long CSV table: an estimate or a test per line.
    Csv,
    /// Everything, as JSON.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// Prediction files, or method configs (`.toml`) whose prediction file `run` wrote.
    #[arg(required = true, value_name = "FILE")]
    pub(crate) methods: Vec<PathBuf>,
    /// Names of the methods, comma-separated [default: the file stems or the configs' tids].
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub(crate) names: Vec<String>,
    /// The baseline the others are tested against: a name or a 1-based position [default: the
    /// first].
    #[arg(long, value_name = "NAME")]
    pub(crate) baseline: Option<String>,
    #[command(flatten)]
    pub(crate) truth: GroundTruthArgs,
    /// Score only the first N sessions of the ground truth (the blind sets have 10 sessions,
    /// 80 turns: see how little such a sample can tell apart).
    #[arg(long, value_name = "N")]
    pub(crate) sessions: Option<usize>,
    /// Bootstrap resamples and permutations of the nDCG intervals and tests.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub(crate) resamples: usize,
    /// Bootstrap resamples of the diversity intervals and the per-turn bands.
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    pub(crate) diversity_resamples: usize,
    /// Seed of every resampling.
    #[arg(long, default_value_t = ResampleParams::default().seed)]
    pub(crate) seed: u64,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub(crate) confidence: f64,
    /// Holm-corrected p-value below which a difference counts as real.
    #[arg(long, default_value_t = 0.05)]
    pub(crate) alpha: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Write the comparison (in --format) to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Draw nDCG per turn with its band, the gold track's rank and diversity per method to an
    /// SVG or PNG file.
    #[arg(long, value_name = "FILE.svg|png")]
    pub(crate) plot: Option<PathBuf>,
}

/// A method to compare: its name and the prediction file holding it.
struct Method {
    name: String,
    path: PathBuf,
}

/// Resolves each argument to a prediction file: a `.toml` config names the file its `run`
/// writes.
fn methods(args: &CompareArgs) -> Result<Vec<Method>> {
    if !args.names.is_empty() && args.names.len() != args.methods.len() {
        bail!(
            "--names gives {} names for {} methods",
            args.names.len(),
            args.methods.len()
        );
    }
    let mut methods = Vec::with_capacity(args.methods.len());
    for (i, input) in args.methods.iter().enumerate() {
        let (default_name, path) = if input.extension().is_some_and(|e| e == "toml") {
            let config = CrsConfig::load(input)?;
            let path = config.predictions_path();
            if !path.is_file() {
                bail!(
                    "{}: its predictions {} do not exist yet; run `music-crs run --config {}` \
                     first",
                    input.display(),
                    path.display(),
                    input.display()
                );
            }
            (config.tid.clone(), path)
        } else {
            let stem = input
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| input.display().to_string());
            (stem, input.clone())
        };
        let name = args.names.get(i).cloned().unwrap_or(default_name);
        if methods.iter().any(|m: &Method| m.name == name) {
            bail!("two methods are named {name:?}; give distinct --names");
        }
        methods.push(Method { name, path });
    }
    Ok(methods)
}

/// The 0-based index of `--baseline` (a name or a 1-based position).
fn baseline_index(baseline: Option<&str>, methods: &[Method]) -> Result<usize> {
    let Some(wanted) = baseline else { return Ok(0) };
    if let Some(index) = methods.iter().position(|m| m.name == wanted) {
        return Ok(index);
    }
    match wanted.parse::<usize>() {
        Ok(position) if (1..=methods.len()).contains(&position) => Ok(position - 1),
        _ => bail!(
            "--baseline {wanted:?} is neither a method name ({}) nor a position 1..{}",
            methods
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            methods.len()
        ),
    }
}

pub(crate) fn compare_command(args: CompareArgs) -> Result<i32> {
    let methods = methods(&args)?;
    let mut inputs: Vec<&Path> = methods.iter().map(|m| m.path.as_path()).collect();
    inputs.extend(args.truth.ground_truth.as_deref());
    if let Some(plot) = &args.plot {
        crate::plot::check_extension(plot)?;
    }
    for output in args.output.iter().chain(&args.plot) {
        refuse_overwriting_inputs(output, &inputs)?;
    }
    let (mut truth, catalog_size) = load_ground_truth(&args.truth)?;
    if let Some(limit) = args.sessions {
        if limit == 0 {
            bail!("--sessions must be at least 1");
        }
        let turns = first_sessions(truth.turns().to_vec(), limit, |gold| &gold.session_id);
        truth = GroundTruth::new(turns)?;
    }
    let files: Vec<PredictionFile> = methods
        .iter()
        .map(|m| PredictionFile::from_json_file(&m.path))
        .collect::<music_crs_metrics::Result<_>>()?;
    let params = CompareParams {
        resample: ResampleParams {
            resamples: args.resamples,
            seed: args.seed,
            confidence: args.confidence,
        },
        diversity_resamples: args.diversity_resamples,
        baseline: baseline_index(args.baseline.as_deref(), &methods)?,
        alpha: args.alpha,
        evaluation: EvaluationParams {
            catalog_size,
            ..EvaluationParams::default()
        },
    };
    let inputs: Vec<MethodPredictions<'_>> = methods
        .iter()
        .zip(&files)
        .map(|(m, f)| MethodPredictions {
            name: &m.name,
            predictions: f.predictions(),
        })
        .collect();
    let started = std::time::Instant::now();
    let comparison = compare(&truth, &inputs, &params).with_context(|| {
        format!(
            "comparing {}",
            methods
                .iter()
                .map(|m| m.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    info!(
        methods = methods.len(),
        turns = comparison.turns,
        resamples = args.resamples,
        "compared in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let text = render(&comparison, args.format)?;
    match &args.output {
        Some(path) => {
            create_parent_dir(path)?;
            music_crs::output::write_atomically(path, text.as_bytes())?;
            println!("wrote the comparison to {}", path.display());
        }
        None => print!("{text}"),
    }
    if let Some(path) = &args.plot {
        create_parent_dir(path)?;
        crate::plot::draw(&comparison, path)?;
        println!("wrote the plot to {}", path.display());
    }
    Ok(0)
}

/// The comparison in `format`.
pub(crate) fn render(comparison: &Comparison, format: Format) -> Result<String> {
    Ok(match format {
        Format::Text => tables(comparison, presets::UTF8_FULL_CONDENSED, true),
        Format::Markdown => tables(comparison, presets::ASCII_MARKDOWN, false),
        Format::Csv => long_csv(comparison)?,
        Format::Json => serde_json::to_string_pretty(comparison)? + "\n",
    })
}

fn table(preset: &str, header: Vec<String>) -> Table {
    let mut table = Table::new();
    table.load_preset(preset).set_header(header);
    table
}

/// The figures table, the tests table and the verdicts.
fn tables(comparison: &Comparison, preset: &str, terminal: bool) -> String {
    let level = comparison.params.resample.confidence * 100.0;
    let metrics = comparison.metrics();
    let mut header = vec!["method".to_owned()];
    header.extend(metrics.iter().map(|m| m.replace('_', " ")));
    header.push("composite (known 0.7)".to_owned());
    let mut figures = table(preset, header);
    for method in &comparison.methods {
        let mut row = vec![method.name.clone()];
        row.extend(method.estimates.iter().map(|e| {
            format!(
                "{:.4} [{:.4}, {:.4}]",
                e.value, e.interval.low, e.interval.high
            )
        }));
        row.push(format!("{:.4}", method.composite.known_part()));
        figures.add_row(row);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} methods on {} turns of {} sessions; {level:.0}% bootstrap intervals over sessions \
         ({} resamples for nDCG, {} for diversity)\n",
        comparison.methods.len(),
        comparison.turns,
        comparison.sessions,
        comparison.params.resample.resamples,
        comparison.params.diversity_resamples
    );
    let _ = writeln!(out, "{figures}\n");
    if comparison.tests.is_empty() {
        return out;
    }
    let mut tests = table(
        preset,
        [
            "method",
            "metric",
            "difference [interval]",
            "p permutation",
            "p bootstrap",
            "Holm p perm.",
            "Holm p boot.",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
    );
    for t in &comparison.tests {
        tests.add_row(vec![
            format!("{} − {}", t.method, t.baseline),
            t.metric.clone(),
            format!(
                "{:+.4} [{:+.4}, {:+.4}]",
                t.difference, t.interval.low, t.interval.high
            ),
            format!("{:.4}", t.p_permutation),
            format!("{:.4}", t.p_bootstrap),
            format!("{:.4}", t.p_permutation_holm),
            format!("{:.4}", t.p_bootstrap_holm),
            if t.within_noise {
                "within noise"
            } else {
                "real"
            }
            .to_owned(),
        ]);
    }
    let _ = writeln!(
        out,
        "Paired tests against {} (two-sided; Holm over {} tests; alpha {}):\n\n{tests}\n",
        comparison.baseline(),
        comparison.tests.len(),
        comparison.params.alpha
    );
    if terminal {
        for verdict in comparison.verdicts() {
            let _ = writeln!(out, "- {verdict}");
        }
    }
    let noisy = comparison.tests.iter().filter(|t| t.within_noise).count();
    let _ = writeln!(
        out,
        "{}{noisy} of {} differences are within noise at this sample size.",
        if terminal { "\n" } else { "" },
        comparison.tests.len()
    );
    out
}

/// One CSV line per estimate and per test, for pandas.
fn long_csv(comparison: &Comparison) -> Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "kind",
        "method",
        "baseline",
        "metric",
        "value",
        "low",
        "high",
        "p_permutation",
        "p_bootstrap",
        "p_permutation_holm",
        "p_bootstrap_holm",
        "within_noise",
    ])?;
    for method in &comparison.methods {
        for e in &method.estimates {
            writer.write_record([
                "estimate",
                &method.name,
                "",
                &e.metric,
                &e.value.to_string(),
                &e.interval.low.to_string(),
                &e.interval.high.to_string(),
                "",
                "",
                "",
                "",
                "",
            ])?;
        }
    }
    for t in &comparison.tests {
        writer.write_record([
            "test",
            &t.method,
            &t.baseline,
            &t.metric,
            &t.difference.to_string(),
            &t.interval.low.to_string(),
            &t.interval.high.to_string(),
            &t.p_permutation.to_string(),
            &t.p_bootstrap.to_string(),
            &t.p_permutation_holm.to_string(),
            &t.p_bootstrap_holm.to_string(),
            &t.within_noise.to_string(),
        ])?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}
