//! Scores the crisis detector on every development set and prints one table: recall and false-alarm rate per
//! file and slice, beside a naive keyword list, with the target for each slice.
//!
//! `cargo run --release --example evaluate [DIR ...] [--show misses|alarms]`
//!
//! Every `*.tsv` in the folders (default `../shared/eval` and `../shared/eval/extra`) is read: a header naming
//! `label` (`si`, `no` or `ind`) and `text` columns, and optionally `grade`. A message counts as flagged when
//! the detector leads the reply with a crisis block (level `self` or `third_party`); `ind` rows are skipped.
//! `--show` prints the texts the detector misses or flags wrongly, with the rule or exception that decided,
//! for development: never copy them into rules.
//!
//! Messages are assessed as the bot assesses chat: by the rules of every language. Then, per language other
//! than English, the recall on that language's own rule examples (the `self` and `third_party` rules) and the
//! false-alarm rate on `examples/data/everyday-<language>.txt`, ordinary chat written for this purpose.

#[path = "support/dev_data.rs"]
mod dev_data;
#[path = "support/naive.rs"]
mod naive;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dev_data::SHORT;
use ketamine_info_bot::safety::BUILT_IN_RULES;
use ketamine_info_bot::{Audience, Bot, Catalog, CrisisLevel};

const AUDIENCE: Audience<'static> = Audience { locale: None, command_prefix: "/", server: None };

struct Row {
    suicidal: bool,
    text: String,
}

/// The rows of a development file, `ind` rows left out.
fn read(path: &Path) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (label, text) in dev_data::read(path)? {
        let suicidal = match label.as_str() {
            "si" => true,
            "no" => false,
            "ind" => continue,
            other => return Err(format!("{}: unknown label {other:?}", path.display())),
        };
        rows.push(Row { suicidal, text });
    }
    Ok(rows)
}

#[derive(Default)]
struct Tally {
    positives: usize,
    caught: usize,
    negatives: usize,
    alarms: usize,
}

impl Tally {
    fn add(&mut self, suicidal: bool, flagged: bool) {
        if suicidal {
            self.positives += 1;
            self.caught += usize::from(flagged);
        } else {
            self.negatives += 1;
            self.alarms += usize::from(flagged);
        }
    }

    fn recall(&self) -> Option<f64> {
        (self.positives > 0).then(|| self.caught as f64 / self.positives as f64)
    }

    fn alarm_rate(&self) -> Option<f64> {
        (self.negatives > 0).then(|| self.alarms as f64 / self.negatives as f64)
    }
}

/// The targets of the development data (issue 7): minimum recall and maximum false-alarm rate, by file name
/// and slice.
fn target(file: &str, short: bool) -> (Option<f64>, Option<f64>) {
    match (file, short) {
        ("si-sample-dev", false) => (Some(0.72), Some(0.02)),
        ("si-sample-dev", true) => (Some(0.55), Some(0.02)),
        ("si-hard-negatives-dev", false) => (None, Some(0.10)),
        ("tweets-suicidal-graded", false) => (Some(0.75), Some(0.08)),
        ("hyperbole" | "everyday-chat-rooms" | "everyday-irc" | "everyday-dialogue" | "everyday-comments", false) => {
            (None, Some(0.001))
        }
        ("chat-death-words" | "stress-posts", false) => (None, Some(0.01)),
        _ => (None, None),
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

fn main() -> ExitCode {
    let mut folders = Vec::new();
    let mut show = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--show" {
            show = args.next();
        } else {
            folders.push(PathBuf::from(arg));
        }
    }
    if folders.is_empty() {
        folders = dev_data::FOLDERS.iter().map(PathBuf::from).collect();
    }
    let files = match dev_data::files(&folders) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };

    let bot = Bot::new(Catalog::built_in());
    let naive = naive::Naive::new();
    let mut misses_targets = 0;
    println!(
        "{:<24} {:<10} {:>6} {:>7} {:>7} {:>9} {:>7} {:>7} {:>9}  target",
        "file", "slice", "rows", "recall", "naive", "", "alarms", "naive", ""
    );
    for file in &files {
        let rows = match read(file) {
            Ok(rows) => rows,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        let name = file.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let (mut all, mut short, mut naive_all, mut naive_short) = Default::default();
        for row in &rows {
            let assessment = bot.chat(&row.text, AUDIENCE).assessment;
            let flagged = assessment.level.is_crisis();
            let naive_flagged = naive.flags(&row.text);
            let is_short = row.text.chars().count() <= SHORT;
            Tally::add(&mut all, row.suicidal, flagged);
            Tally::add(&mut naive_all, row.suicidal, naive_flagged);
            if is_short {
                Tally::add(&mut short, row.suicidal, flagged);
                Tally::add(&mut naive_short, row.suicidal, naive_flagged);
            }
            let shown = match show.as_deref() {
                Some("misses") => row.suicidal && !flagged,
                Some("alarms") => !row.suicidal && flagged,
                _ => false,
            };
            if shown {
                let rule = assessment.rule.or(assessment.exception).unwrap_or("-");
                let text: String = row.text.chars().take(300).collect();
                println!("[{name} {} {rule}] {text}", assessment.level.as_str());
            }
        }
        let slices: [(&str, &Tally, &Tally, bool); 2] =
            [("all", &all, &naive_all, false), (&format!("<= {SHORT}"), &short, &naive_short, true)];
        for (slice, tally, naive, is_short) in slices {
            let (min_recall, max_alarms) = target(&name, is_short);
            if is_short && min_recall.is_none() && max_alarms.is_none() {
                continue;
            }
            let recall_ok = min_recall.is_none_or(|min| tally.recall().is_some_and(|r| r >= min));
            let alarms_ok = max_alarms.is_none_or(|max| tally.alarm_rate().is_some_and(|a| a <= max));
            let verdict = match (min_recall, max_alarms) {
                (None, None) => String::new(),
                _ if recall_ok && alarms_ok => "met".to_owned(),
                _ => {
                    misses_targets += 1;
                    "MISSED".to_owned()
                }
            };
            let goal = [min_recall.map(|r| format!("recall >= {r}")), max_alarms.map(|a| format!("alarms <= {a}"))];
            println!(
                "{name:<24} {slice:<10} {:>6} {:>7} {:>7} {:>9} {:>7} {:>7} {:>9}  {} {verdict}",
                tally.positives + tally.negatives,
                percent(tally.recall()),
                percent(naive.recall()),
                format!("{}/{}", tally.caught, tally.positives),
                percent(tally.alarm_rate()),
                percent(naive.alarm_rate()),
                format!("{}/{}", tally.alarms, tally.negatives),
                goal.into_iter().flatten().collect::<Vec<_>>().join(", "),
            );
        }
    }
    println!("{misses_targets} target(s) missed");
    match other_languages(&bot) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Recall on each other language's crisis-rule examples and false alarms on its everyday chat.
fn other_languages(bot: &Bot) -> Result<(), String> {
    println!("\n{:<8} {:>9} {:>12} {:>9} {:>12}", "language", "recall", "", "alarms", "");
    for (name, text) in &BUILT_IN_RULES[1..] {
        let rules: toml::Table = toml::from_str(text).map_err(|error| format!("{name}: {error}"))?;
        let language = rules["settings"]["language"].as_str().ok_or(format!("{name}: no language"))?.to_owned();
        let mut examples = Tally::default();
        for rule in rules["rule"].as_array().into_iter().flatten() {
            if !matches!(rule["level"].as_str(), Some("self" | "third_party")) {
                continue;
            }
            for example in rule["examples"].as_array().into_iter().flatten().filter_map(|e| e.as_str()) {
                examples.add(true, bot.chat(example, AUDIENCE).assessment.level >= CrisisLevel::ThirdParty);
            }
        }
        let everyday_path = format!("{}/examples/data/everyday-{language}.txt", env!("CARGO_MANIFEST_DIR"));
        let everyday = std::fs::read_to_string(&everyday_path).map_err(|error| format!("{everyday_path}: {error}"))?;
        for line in everyday.lines().filter(|line| !line.trim().is_empty() && !line.starts_with('#')) {
            examples.add(false, bot.chat(line, AUDIENCE).assessment.level.is_crisis());
        }
        println!(
            "{language:<8} {:>9} {:>12} {:>9} {:>12}",
            percent(examples.recall()),
            format!("{}/{}", examples.caught, examples.positives),
            percent(examples.alarm_rate()),
            format!("{}/{}", examples.alarms, examples.negatives),
        );
    }
    Ok(())
}
