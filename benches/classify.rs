//! Throughput of the full chat path (normalise + crisis detection + topic matching + reply composition) on
//! the development data's own texts as they are (emoji, curly quotes, long Reddit posts), beside the naive
//! keyword baseline in the same run. Criterion prints messages per second (`elem/s`) or bytes per second.
//!
//! `cargo bench --bench classify` (reads every `*.tsv` in `../shared/eval` and `../shared/eval/extra`)
//!
//! - chat: every text of at most 280 characters, in messages per second;
//! - long posts: every text over 280 characters, in bytes per second;
//! - one 64 KiB message made of long posts joined, in time per message.

#[path = "../examples/support/dev_data.rs"]
mod dev_data;
#[path = "../examples/support/naive.rs"]
mod naive;

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dev_data::SHORT;
use ketamine_info_bot::{Audience, Bot, Catalog};

/// The text of every row of every development file.
fn corpus() -> Vec<String> {
    let folders: Vec<PathBuf> = dev_data::FOLDERS.iter().map(PathBuf::from).collect();
    let files = dev_data::files(&folders).unwrap_or_else(|e| panic!("the benchmark reads the development data: {e}"));
    let rows = files.iter().flat_map(|file| dev_data::read(file).unwrap_or_else(|e| panic!("{e}")));
    rows.map(|(_, text)| text).collect()
}

fn throughput(c: &mut Criterion) {
    let bot = Bot::new(Catalog::built_in());
    let naive = naive::Naive::new();
    let audience = Audience { locale: Some("en-US"), command_prefix: "/", server: None };
    let (chat, long): (Vec<String>, Vec<String>) = corpus().into_iter().partition(|t| t.chars().count() <= SHORT);
    let long_bytes: usize = long.iter().map(String::len).sum();
    let mut huge = long.join(" ");
    let mut end = 64 * 1024;
    while !huge.is_char_boundary(end) {
        end -= 1;
    }
    huge.truncate(end);
    eprintln!(
        "corpus: {} chat messages, {} long posts ({long_bytes} bytes), one {} byte message",
        chat.len(),
        long.len(),
        huge.len()
    );

    let mut compare = |group: &str, throughput: Throughput, messages: &[String]| {
        let mut group = c.benchmark_group(group);
        group.throughput(throughput);
        group.bench_function("full path", |b| {
            b.iter(|| messages.iter().map(|m| bot.chat(m, audience)).for_each(|outcome| drop(black_box(outcome))))
        });
        group.bench_function("naive baseline", |b| {
            b.iter(|| black_box(messages.iter().filter(|m| naive.flags(m)).count()))
        });
        group.finish();
    };
    compare("chat (<= 280 chars)", Throughput::Elements(chat.len() as u64), &chat);
    compare("long posts", Throughput::Bytes(long_bytes as u64), &long);

    let mut group = c.benchmark_group("one 64 KiB message");
    group.throughput(Throughput::Elements(1));
    group.bench_function("full path", |b| b.iter(|| black_box(bot.chat(&huge, audience)).reply.is_some()));
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
