//! Replies as Matrix message content: a plain `body` and an HTML `formatted_body`, both ending with the
//! disclaimer.

use crate::reply::{Render, Reply};

/// `(body, formatted_body)` for a reply.
pub fn body_and_html(reply: &Reply) -> (String, String) {
    (reply.to_plain_text(), reply.render(Html::default()))
}

#[derive(Default)]
struct Html {
    html: String,
}

impl Render for Html {
    type Output = String;

    fn heading(&mut self, text: &str) {
        self.html.push_str(&format!("<p><strong>{}</strong></p>", escape(text)));
    }

    fn paragraph(&mut self, text: &str) {
        self.html.push_str(&format!("<p>{}</p>", escape(text).replace('\n', "<br>")));
    }

    fn list(&mut self, items: &[String]) {
        self.html.push_str("<ul>");
        for item in items {
            self.html.push_str(&format!("<li>{}</li>", escape(item)));
        }
        self.html.push_str("</ul>");
    }

    fn finish(mut self, disclaimer: &str) -> String {
        self.html.push_str(&format!("<p><em>{}</em></p>", escape(disclaimer)));
        self.html
    }
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Audience, Bot, Catalog, Incoming};

    #[test]
    fn plain_and_html_both_end_with_the_disclaimer() {
        let bot = Bot::new(Catalog::built_in());
        let audience = Audience { locale: None, command_prefix: "!", server: None };
        let reply = bot.respond(Incoming::Chat("I want to die. what are the risks of ketamine?"), audience).unwrap();
        let (body, html) = body_and_html(&reply);
        assert!(body.ends_with(&bot.catalog().disclaimer));
        assert!(html.ends_with(&format!("<p><em>{}</em></p>", escape(&bot.catalog().disclaimer))));
        assert!(html.starts_with("<p><strong>You don&#39;t have to go through this alone</strong></p>"));
        assert!(html.contains("<ul><li>") && html.contains("988"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
