//! Every request body the bot sends, checked against Discord's official OpenAPI spec (vendored beside this
//! file, MIT licence, discord/discord-api-spec) plus the limits the spec does not enforce.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::{json, Value};

use super::fake_discord::Request;

const SPEC: &str = include_str!("discord-openapi.json");

fn validator(schema_ref: &str) -> jsonschema::Validator {
    static COMPONENTS: OnceLock<Value> = OnceLock::new();
    let components = COMPONENTS.get_or_init(|| {
        let spec: Value = serde_json::from_str(SPEC).expect("the vendored spec is JSON");
        spec["components"].clone()
    });
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": components,
        "$ref": schema_ref,
    });
    jsonschema::validator_for(&schema).expect("the spec's schemas compile")
}

fn schema_errors(schema_ref: &str, body: &Value) -> Vec<String> {
    validator(schema_ref)
        .iter_errors(body)
        .map(|error| format!("{schema_ref}: {error} at {}", error.instance_path()))
        .collect()
}

/// Allowed mentions must allow nothing: `parse: []`, no users or roles, no reply ping. The one exception is the
/// staff-alert reminder: a single role, the one its content pings.
fn no_pings(allowed_mentions: &Value, content: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if allowed_mentions["parse"] != json!([]) {
        problems.push(format!("allowed_mentions.parse is {}, not []", allowed_mentions["parse"]));
    }
    if allowed_mentions.get("users").is_some_and(|v| v != &json!([])) {
        problems.push(format!("allowed_mentions.users is {}", allowed_mentions["users"]));
    }
    let roles: Vec<&str> =
        allowed_mentions["roles"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let reminder = matches!(roles.as_slice(), [role] if content.starts_with(&format!("<@&{role}>")));
    if !roles.is_empty() && !reminder {
        problems.push(format!("allowed_mentions.roles is {}", allowed_mentions["roles"]));
    }
    if allowed_mentions["replied_user"] != json!(false) {
        problems.push("allowed_mentions.replied_user is not false".into());
    }
    problems
}

fn content_limits(body: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let content = body["content"].as_str().unwrap_or("");
    if content.chars().count() > 2000 {
        problems.push(format!("content has {} characters, more than 2000", content.chars().count()));
    }
    problems.extend(no_pings(&body["allowed_mentions"], content));
    problems
}

fn command_limits(commands: &Value) -> Vec<String> {
    let name_rule = Regex::new(r"^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$").unwrap();
    let mut problems = Vec::new();
    for command in commands.as_array().into_iter().flatten() {
        let name = command["name"].as_str().unwrap_or("");
        // Context-menu commands (user 2, message 3) have names of 1-32 characters in any case and no description.
        if command["type"].as_u64().is_some_and(|kind| kind != 1) {
            if !(1..=32).contains(&name.chars().count())
                || command["description"].as_str().is_some_and(|d| !d.is_empty())
            {
                problems.push(format!("context-menu command {name:?} breaks Discord's rules"));
            }
            continue;
        }
        if !name_rule.is_match(name) || name.to_lowercase() != name {
            problems.push(format!("command name {name:?} breaks Discord's rule"));
        }
        let description = command["description"].as_str().unwrap_or("").chars().count();
        if !(1..=100).contains(&description) {
            problems.push(format!("command {name:?}: description of {description} characters"));
        }
        if command.to_string().chars().count() > 8000 {
            problems.push(format!("command {name:?} is over 8000 characters"));
        }
        for option in command["options"].as_array().into_iter().flatten() {
            let option_name = option["name"].as_str().unwrap_or("");
            if !name_rule.is_match(option_name)
                || option["description"].as_str().is_none_or(|d| d.is_empty() || d.chars().count() > 100)
            {
                problems.push(format!("command {name:?}: option {option_name:?} breaks Discord's rules"));
            }
        }
    }
    problems
}

/// Everything wrong with one request, by the spec and by the limits; empty when it is valid.
pub fn problems(request: &Request) -> Vec<String> {
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let body = &request.body;
    let mut problems = match (request.method.as_str(), segments.as_slice()) {
        ("PUT", ["applications", _, "commands"] | ["applications", _, "guilds", _, "commands"]) => {
            let mut problems = Vec::new();
            for command in body.as_array().into_iter().flatten() {
                // The docs make permissions a string of digits; the spec, an integer.
                let mut command = command.clone();
                if let Some(digits) = command["default_member_permissions"].as_str() {
                    command["default_member_permissions"] =
                        digits.parse::<u64>().map_or(json!(digits), |bits| json!(bits));
                }
                problems.extend(schema_errors("#/components/schemas/ApplicationCommandUpdateRequest", &command));
            }
            problems.extend(command_limits(body));
            problems
        }
        ("POST", ["channels", _, "messages"]) => {
            let mut problems = schema_errors("#/components/schemas/MessageCreateRequest", body);
            problems.extend(content_limits(body));
            problems
        }
        ("POST", ["interactions", _, _, "callback"]) => match body["type"].as_u64() {
            Some(4) => {
                let mut problems = schema_errors("#/components/schemas/CreateMessageInteractionCallbackRequest", body);
                problems.extend(content_limits(&body["data"]));
                problems
            }
            Some(8) => {
                let mut problems =
                    schema_errors("#/components/schemas/ApplicationCommandAutocompleteCallbackRequest", body);
                let choices = body["data"]["choices"].as_array().map_or(0, Vec::len);
                if choices > 25 {
                    problems.push(format!("{choices} autocomplete choices, more than 25"));
                }
                problems
            }
            Some(7) => {
                let mut problems = schema_errors("#/components/schemas/UpdateMessageInteractionCallbackRequest", body);
                problems.extend(content_limits(&body["data"]));
                problems
            }
            other => vec![format!("unexpected interaction callback type {other:?}")],
        },
        ("POST", ["webhooks", _, _]) => {
            let mut problems = schema_errors("#/components/schemas/IncomingWebhookRequestPartial", body);
            problems.extend(content_limits(body));
            problems
        }
        ("GET", _) => Vec::new(),
        _ => vec!["a request the bot should not make".to_owned()],
    };
    for problem in &mut problems {
        *problem = format!("{} {}: {problem}", request.method, request.path);
    }
    problems
}

/// Asserts that every request so far is valid.
pub fn assert_valid(requests: &[Request]) {
    let problems: Vec<String> = requests.iter().flat_map(problems).collect();
    assert!(problems.is_empty(), "requests break Discord's contract:\n{}", problems.join("\n"));
}

#[test]
fn the_contract_check_catches_what_it_should() {
    let request = |method: &str, path: &str, body: Value| Request {
        method: method.into(),
        path: path.into(),
        body,
        at: std::time::Instant::now(),
    };
    let pinging =
        request("POST", "/channels/1/messages", json!({"content": "hi", "allowed_mentions": {"parse": ["everyone"]}}));
    assert!(!problems(&pinging).is_empty());
    let unset = request("POST", "/channels/1/messages", json!({"content": "hi"}));
    assert!(!problems(&unset).is_empty(), "allowed mentions must be sent");
    let long = request(
        "POST",
        "/channels/1/messages",
        json!({"content": "x".repeat(2001), "allowed_mentions": {"parse": [], "replied_user": false}}),
    );
    assert!(!problems(&long).is_empty());
    let wrong_type = request(
        "POST",
        "/channels/1/messages",
        json!({"content": 5, "allowed_mentions": {"parse": [], "replied_user": false}}),
    );
    assert!(problems(&wrong_type).iter().any(|p| p.contains("MessageCreateRequest")));
    let good = request(
        "POST",
        "/channels/1/messages",
        json!({"content": "hi", "allowed_mentions": {"parse": [], "replied_user": false}}),
    );
    assert_eq!(problems(&good), Vec::<String>::new());
    let bad_name = request("PUT", "/applications/1/commands", json!([{"name": "Bad Name", "description": "x"}]));
    assert!(!problems(&bad_name).is_empty());
    let role_ping = |content: &str, roles: Value| {
        let body =
            json!({"content": content, "allowed_mentions": {"parse": [], "roles": roles, "replied_user": false}});
        problems(&request("POST", "/channels/1/messages", body))
    };
    assert_eq!(role_ping("<@&77> an alert waits", json!(["77"])), Vec::<String>::new(), "the reminder's one role");
    assert!(!role_ping("an alert waits", json!(["77"])).is_empty(), "a role the message does not ping");
    assert!(!role_ping("<@&77> <@&78>", json!(["77", "78"])).is_empty(), "more than one role");
}
