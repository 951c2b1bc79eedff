//! Throughput of the full chat path (normalise + crisis detection + topic matching + reply composition) over
//! realistic short chat messages, beside a naive baseline in the same run: one `Regex` per keyword and a
//! lowercase copy of every message. Criterion prints both as messages per second (`thrpt`, in elem/s).
//!
//! `cargo bench --bench classify`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ketamine_info_bot::{Audience, Bot, Catalog};
use regex::Regex;

/// Chat as it mostly is: greetings, chatter, questions, idioms, and now and then a message that needs care.
const MESSAGES: &[&str] = &[
    "good morning everyone",
    "how was your weekend?",
    "lol same",
    "anyone watching the game tonight",
    "this homework is killing me",
    "I'm dying to see the new movie",
    "thanks, that helped a lot",
    "what are the risks of microdosing ketamine?",
    "is ketamine legal in the US?",
    "my therapist suggested spravato, has anyone tried it?",
    "had a rough day at work, going to bed early",
    "can someone link the rules channel",
    "kill the process and restart it",
    "I want to kill myself",
    "my friend is suicidal and I don't know what to do",
    "does ketamine help with suicidal ideation?",
    "brb grabbing coffee",
    "I'm so tired of everything",
    "welcome to the server!",
    "does ketamine cause bladder problems?",
    "haha that meme is perfect",
    "I don't want to wake up tomorrow",
    "the new update broke my mod list again",
    "congrats on the new job!!",
    "ok but who ate my leftovers",
    "anyone know a good therapist in Leeds?",
    "I'd die for a pizza right now",
    "k1ll mys3lf",
    "meeting moved to 3pm",
    "side effects of ketamine therapy?",
];

fn catalog() -> Catalog {
    Catalog::parse("responses.toml", include_str!("../responses.toml")).expect("valid content")
}

/// The naive detector the evaluation compares against: substrings, one `Regex` each, on a lowercase copy.
struct Naive {
    keywords: Vec<Regex>,
}

impl Naive {
    fn new() -> Naive {
        let words = [
            "suicide",
            "suicidal",
            "kill myself",
            "kms",
            "want to die",
            "end my life",
            "overdose",
            "self harm",
            "self-harm",
            "cut myself",
            "hang myself",
            "end it all",
            "take my life",
            "kill me",
            "better off dead",
            "no reason to live",
            "wish i was dead",
            "want to be dead",
            "unalive",
            "sewerslide",
            "hurt myself",
        ];
        Naive { keywords: words.iter().map(|w| Regex::new(&regex::escape(w)).unwrap()).collect() }
    }

    fn flags(&self, message: &str) -> bool {
        let lower = message.to_lowercase();
        self.keywords.iter().any(|keyword| keyword.is_match(&lower))
    }
}

fn throughput(c: &mut Criterion) {
    let bot = Bot::new(catalog());
    let naive = Naive::new();
    let audience = Audience { locale: Some("en-US"), command_prefix: "/" };
    let mut group = c.benchmark_group("short chat messages");
    group.throughput(Throughput::Elements(MESSAGES.len() as u64));
    group.bench_function("full path: normalise + detect + match + reply", |b| {
        b.iter(|| {
            for message in MESSAGES {
                black_box(bot.chat(black_box(message), audience));
            }
        })
    });
    group.bench_function("naive baseline: lowercase + one regex per keyword", |b| {
        b.iter(|| {
            for message in MESSAGES {
                black_box(naive.flags(black_box(message)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
