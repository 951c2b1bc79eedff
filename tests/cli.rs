//! The real binary, driven as a user or a script would.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const DISCLAIMER: &str = "Disclaimer: This information is for educational purposes only and is not medical advice. \
    Always consult with a healthcare professional before making any decisions about your health or treatment.";

fn bot(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ketamine-info-bot"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR")).env_remove("RUST_LOG");
    command
}

fn run(args: &[&str]) -> Output {
    bot(args).output().expect("the binary runs")
}

fn run_with_input(args: &[&str], input: &str) -> Output {
    let mut child = bot(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A scratch folder unique to one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ketamine-info-bot-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn ask_answers_a_question_with_the_snippet_and_the_disclaimer() {
    let output = run(&["ask", "what are the risks of microdosing ketamine?"]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.contains("Bladder Problems: Chronic ketamine use has been linked to serious bladder problems."));
    assert!(text.trim_end().ends_with(DISCLAIMER), "{text}");
}

#[test]
fn ask_prints_nothing_for_ordinary_chat_and_idioms() {
    for message in ["good morning", "this homework is killing me"] {
        let output = run(&["ask", message]);
        assert!(output.status.success());
        assert_eq!(stdout(&output), "", "{message:?}");
    }
}

#[test]
fn ask_leads_with_crisis_resources_for_the_locale() {
    let output = run(&["ask", "I want to kill myself"]);
    let text = stdout(&output);
    assert!(text.starts_with("You don't have to go through this alone"), "{text}");
    assert!(text.contains("988") && text.contains("116 123") && text.contains("findahelpline.com"));
    assert!(text.trim_end().ends_with(DISCLAIMER));

    let australia = stdout(&run(&["--locale", "en-AU", "ask", "I want to kill myself"]));
    assert!(australia.contains("13 11 14") && !australia.contains("988"), "{australia}");
}

#[test]
fn a_crisis_in_another_language_is_answered_in_it_with_the_countrys_lines() {
    let mexico = stdout(&run(&["--locale", "es-MX", "ask", "ya no quiero vivir"]));
    assert!(mexico.starts_with("No tienes que pasar por esto sin compañía"), "{mexico}");
    assert!(mexico.contains("Línea de la Vida") && mexico.contains("800 911 2000") && mexico.contains("911"));
    assert!(mexico.trim_end().ends_with(DISCLAIMER));
    let france = stdout(&run(&["--locale", "fr-FR", "ask", "je vais me suicider ce soir"]));
    assert!(france.starts_with("Tu n'as pas à traverser ça sans soutien") && france.contains("3114"), "{france}");
    // A Spanish message in an English-speaking server: the server's country's lines in Spanish (988 has them).
    let us = stdout(&run(&["--locale", "en-US", "ask", "quiero suicidarme"]));
    assert!(us.starts_with("No tienes que pasar") && us.contains("988 y marca 2"), "{us}");
    let friend = stdout(&run(&["--locale", "de-DE", "ask", "meine Freundin will sich umbringen"]));
    assert!(friend.starts_with("Jemandem helfen") && friend.contains("TelefonSeelsorge"), "{friend}");
    for quiet in [
        "ich sterbe vor Lachen",
        "je suis mort de rire",
        "me muero de risa",
        "morto di fame",
        "ik ga dood van de honger",
        "estou morrendo de rir kkkk",
        "ich bin todmüde",
        "ich bin todmuede",
    ] {
        assert_eq!(stdout(&run(&["ask", quiet])), "", "{quiet}");
    }
    for (accented, plain) in
        [("quiero suicídarme", "quiero suicidarme"), ("je veux me suicider", "je veux me suicidér")]
    {
        assert_eq!(stdout(&run(&["ask", accented])), stdout(&run(&["ask", plain])), "accents written or omitted");
    }
}

#[test]
fn lethality_questions_plans_and_reported_intent_lead_with_crisis_resources() {
    let dosing = "it can be difficult to accurately dose ketamine";
    for message in [
        "what's the lethal dose of ketamine",
        "how much ketamine would it take to overdose and die",
        "I've got everything I need now and I'm doing it tonight. thank you all for being my friends",
    ] {
        let text = stdout(&run(&["ask", message]));
        assert!(text.starts_with("You don't have to go through this alone"), "{message:?}: {text}");
        assert!(!text.contains(dosing) && !text.contains("Schedule III"), "{message:?}: the crisis block alone");
        assert!(text.trim_end().ends_with(DISCLAIMER));
    }
    let brother = stdout(&run(&["ask", "my brother texted me that he's going to end it all tonight"]));
    let helping = stdout(&run(&["ask", "my friend is suicidal"]));
    let title = helping.lines().next().unwrap();
    assert!(brother.starts_with(title) && !brother.starts_with("You don't have to go through this alone"), "{brother}");
    assert_eq!(stdout(&run(&["ask", "this boss fight is killing me lol"])), "");
}

#[test]
fn command_prints_a_topic_help_and_resources() {
    let risks = stdout(&run(&["command", "ketamine-risks"]));
    assert!(risks.contains("Potential Risks:") && risks.trim_end().ends_with(DISCLAIMER));
    let help = stdout(&run(&["command", "ketamine"]));
    assert!(help.contains("/ketamine-legal") && help.contains("/crisis-resources"));
    let uk = stdout(&run(&["command", "crisis-resources", "uk"]));
    assert!(uk.contains("SHOUT to 85258") && uk.trim_end().ends_with(DISCLAIMER));
    let unknown = run(&["command", "ketamine-nonsense"]);
    assert!(!unknown.status.success() && stderr(&unknown).contains("no command"));
}

#[test]
fn classify_writes_one_json_object_per_line() {
    let input = "I want to kill myself\nis ketamine legal?\ngood morning\nmy brother is suicidal\n";
    let output = run_with_input(&["classify"], input);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<serde_json::Value> =
        stdout(&output).lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["crisis"], "self");
    assert_eq!(lines[0]["rule"], "self.active.kill-myself");
    assert_eq!(lines[0]["category"], "active-thoughts");
    assert!(lines[0]["reply"].as_str().unwrap().ends_with(DISCLAIMER));
    assert_eq!(lines[1]["crisis"], "none");
    assert_eq!(lines[1]["topics"], serde_json::json!(["legal-status"]));
    let silent = serde_json::json!({"crisis": "none", "language": "en", "rule": null, "category": null, "exception": null, "topics": [], "reply": null});
    assert_eq!(lines[2], silent);
    assert_eq!(lines[3]["crisis"], "third_party");
    let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["category", "crisis", "exception", "language", "reply", "rule", "topics"],
        "exactly these fields"
    );
}

#[test]
fn console_answers_piped_lines_without_prompts() {
    let output = run_with_input(&["console"], "good morning\n/ketamine-legal\nis ketamine legal?\n");
    let text = stdout(&output);
    assert!(output.status.success());
    assert_eq!(text.matches("Schedule III").count(), 2, "{text}");
    assert_eq!(text.matches(DISCLAIMER).count(), 2);
    assert!(!text.contains("> "), "no prompt when piped");
}

#[test]
fn check_accepts_the_shipped_content() {
    let output = run(&["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("responses.toml: OK: "));
    for language in ["en", "es", "pt", "fr", "de", "it", "nl"] {
        let line = format!("crisis-rules/{language}.toml: OK ({language}): ");
        assert!(stdout(&output).contains(&line), "{line} in {}", stdout(&output));
    }
    assert_eq!(stdout(&output).matches("every example holds").count(), 7);
}

#[test]
fn check_runs_the_examples_of_an_edited_rules_file() {
    let dir = scratch("check-rules");
    let rules = dir.join("rules.toml");
    let built_in = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("crisis-rules/en.toml")).unwrap();
    std::fs::write(&rules, built_in.replacen("\"this homework is killing me\"", "\"I want to kill myself\"", 1))
        .unwrap();
    let output = run(&["check", "--rules", rules.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    let line = built_in.lines().position(|l| l.contains("\"this homework is killing me\"")).unwrap() + 1;
    assert!(errors.contains(&format!("{}:{line}:", rules.display())), "{errors}");
    assert!(errors.contains("`not` example of self.active.kill-myself must be below `self`"), "{errors}");
    assert!(stdout(&output).contains("responses.toml: OK"), "the content is still checked");
}

#[test]
fn check_lists_every_error_with_file_and_line_and_fails() {
    let dir = scratch("check");
    let broken = dir.join("broken.toml");
    let content = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("responses.toml")).unwrap();
    let content = content.replacen("command = \"ketamine-dosing\"", "command = \"Bad Name\"", 1).replacen(
        "'cystitis'",
        "'(('",
        1,
    );
    std::fs::write(&broken, content).unwrap();
    let output = run(&["check", broken.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    let path = broken.display().to_string();
    assert!(errors.contains(&format!("{path}:")) && errors.contains("command name \"Bad Name\""), "{errors}");
    assert!(errors.contains("')' is missing") && errors.contains("2 error(s)"), "{errors}");
}

#[test]
fn the_bot_refuses_to_start_on_broken_content() {
    let dir = scratch("refuse");
    let broken = dir.join("responses.toml");
    std::fs::write(&broken, "disclaimer = \"x\"\n[oops\n").unwrap();
    let output = run(&["--responses", broken.to_str().unwrap(), "ask", "is ketamine legal?"]);
    assert!(!output.status.success());
    let errors = stderr(&output);
    assert!(errors.contains("will not start") && errors.contains(&format!("{}:2:", broken.display())), "{errors}");
    assert_eq!(stdout(&output), "");
}

#[test]
fn the_built_in_content_works_from_any_folder() {
    let dir = scratch("anywhere");
    let output = bot(&["ask", "is ketamine legal?"]).current_dir(&dir).output().unwrap();
    assert!(stdout(&output).contains("Schedule III"), "{}", stderr(&output));
}

#[test]
fn check_reports_settings_that_could_only_fail_later_with_line_and_column() {
    let dir = scratch("check-config");
    let config = dir.join("bot.toml");
    std::fs::write(&config, "[discord]\nguild_id = 0\n").unwrap();
    let output = run(&["--config", config.to_str().unwrap(), "check"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&format!("{}:2:12:", config.display())), "{}", stderr(&output));
    std::fs::write(&config, "[matrix]\nhomeserver = \"https://matrix.example.org\"\ncatch_up_seconds = 60\n").unwrap();
    let output = run(&["--config", config.to_str().unwrap(), "check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(&format!("{}: OK", config.display())));
}

#[test]
fn check_refuses_a_disclaimer_that_leaves_no_room_for_the_reply() {
    let dir = scratch("check-disclaimer");
    let content = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("responses.toml")).unwrap();
    let disclaimer = content.lines().find(|line| line.starts_with("disclaimer = ")).unwrap();
    let broken = dir.join("responses.toml");
    std::fs::write(&broken, content.replacen(disclaimer, &format!("disclaimer = \"{}\"", "x".repeat(1998)), 1))
        .unwrap();
    let output = run(&["check", broken.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("the disclaimer has 1998 characters"), "{}", stderr(&output));
}
