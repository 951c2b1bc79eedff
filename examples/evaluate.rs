//! Scores the crisis detector on labelled data and prints recall and false-positive rates.
//!
//! `cargo run --release --example evaluate [SAMPLE.tsv] [HARD_NEGATIVES.tsv] [--show misses|alarms]`
//!
//! The files are TSV with a header and the columns `label` (`si` or `no`), `source`, `text`; the defaults are
//! the development sets in `../shared/eval/`. A message counts as flagged when the detector leads the reply with
//! a crisis block (level `self` or `third_party`); `mention` only adds a short resources line and is reported
//! on its own line. `--show` prints the texts the detector misses or flags wrongly, for development.

use std::process::ExitCode;

use ketamine_info_bot::normalize::normalize;
use ketamine_info_bot::{CrisisLevel, Detector};

/// Chat-length texts, reported separately because chat is shorter than the Reddit posts in the data.
const SHORT: usize = 280;

struct Row {
    suicidal: bool,
    text: String,
}

fn read(path: &str) -> Result<Vec<Row>, String> {
    let data = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut rows = Vec::new();
    for (number, line) in data.lines().enumerate().skip(1) {
        let mut columns = line.splitn(3, '\t');
        let (Some(label), Some(_source), Some(text)) = (columns.next(), columns.next(), columns.next()) else {
            return Err(format!("{path}:{}: expected label, source and text", number + 1));
        };
        let suicidal = match label {
            "si" => true,
            "no" => false,
            other => return Err(format!("{path}:{}: unknown label {other:?}", number + 1)),
        };
        rows.push(Row { suicidal, text: text.to_owned() });
    }
    Ok(rows)
}

#[derive(Default)]
struct Tally {
    positives: usize,
    caught: usize,
    negatives: usize,
    alarms: usize,
    mentions_on_negatives: usize,
}

impl Tally {
    fn add(&mut self, row: &Row, level: CrisisLevel) {
        if row.suicidal {
            self.positives += 1;
            self.caught += usize::from(level.is_crisis());
        } else {
            self.negatives += 1;
            self.alarms += usize::from(level.is_crisis());
            self.mentions_on_negatives += usize::from(level == CrisisLevel::Mention);
        }
    }

    fn print(&self, name: &str) {
        let ratio = |part: usize, whole: usize| if whole == 0 { f64::NAN } else { part as f64 / whole as f64 };
        println!(
            "{name:<32} recall {:.3} ({}/{})  false-positive rate {:.3} ({}/{})  mention-only on negatives {:.3}",
            ratio(self.caught, self.positives),
            self.caught,
            self.positives,
            ratio(self.alarms, self.negatives),
            self.alarms,
            self.negatives,
            ratio(self.mentions_on_negatives, self.negatives),
        );
    }
}

fn main() -> ExitCode {
    let mut paths = Vec::new();
    let mut show = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--show" {
            show = args.next();
        } else {
            paths.push(arg);
        }
    }
    let sample = paths.first().map_or("../shared/eval/si-sample-dev.tsv", String::as_str);
    let hard = paths.get(1).map_or("../shared/eval/si-hard-negatives-dev.tsv", String::as_str);
    let (sample, hard) = match (read(sample), read(hard)) {
        (Ok(sample), Ok(hard)) => (sample, hard),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };

    let detector = Detector::default();
    let (mut all, mut short, mut hard_tally) = (Tally::default(), Tally::default(), Tally::default());
    for (row, is_hard) in sample.iter().map(|r| (r, false)).chain(hard.iter().map(|r| (r, true))) {
        let assessment = detector.assess(&normalize(&row.text));
        let level = assessment.level;
        if is_hard {
            hard_tally.add(row, level);
        } else {
            all.add(row, level);
            if row.text.chars().count() <= SHORT {
                short.add(row, level);
            }
        }
        let shown = match show.as_deref() {
            Some("misses") => row.suicidal && !level.is_crisis(),
            Some("alarms") => !row.suicidal && level.is_crisis(),
            _ => false,
        };
        if shown {
            let rule = assessment.rule.or(assessment.exception).unwrap_or("-");
            println!("[{} {rule}] {}", level.as_str(), row.text.chars().take(300).collect::<String>());
        }
    }
    all.print("sample, all rows");
    short.print(&format!("sample, texts <= {SHORT} chars"));
    hard_tally.print("hard negatives");
    ExitCode::SUCCESS
}
