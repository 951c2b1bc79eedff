//! The development data that the evaluation and the benchmark read: every `*.tsv` in the folders, each with a
//! header naming at least the `label` and `text` columns.

use std::path::{Path, PathBuf};

/// The development sets beside this project.
pub const FOLDERS: &[&str] = &["../shared/eval", "../shared/eval/extra"];

/// Chat-length texts, reported apart because chat is shorter than the Reddit posts in the data.
pub const SHORT: usize = 280;

/// The `*.tsv` files of the folders, each folder's in name order.
pub fn files(folders: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for folder in folders {
        let entries = std::fs::read_dir(folder).map_err(|e| format!("cannot read {}: {e}", folder.display()))?;
        let mut tsv: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "tsv")).collect();
        tsv.sort();
        files.extend(tsv);
    }
    Ok(files)
}

/// The label and text of every row of a file.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, String> {
    let data = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = data.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let column = |name: &str| header.iter().position(|c| *c == name);
    let (Some(label), Some(text)) = (column("label"), column("text")) else {
        return Err(format!("{}: the header must name `label` and `text` columns", path.display()));
    };
    let mut rows = Vec::new();
    for (number, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let (Some(&label), Some(&text)) = (fields.get(label), fields.get(text)) else {
            return Err(format!("{}:{}: expected {} columns", path.display(), number + 2, header.len()));
        };
        rows.push((label.to_owned(), text.to_owned()));
    }
    Ok(rows)
}
