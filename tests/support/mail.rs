//! Where a test server's mail goes, and how a test reads it back.

use std::sync::Arc;

use latchkey::config::Config;
use latchkey::mail::Mailer;
use latchkey::mail::outbox::Outbox;
use latchkey::mail::ses::SesMailer;
use serde_json::Value;

use crate::{Backend, aws_endpoint, aws_sdk_config, http_client};

/// Where a test server's mail goes, and how a test reads it back.
pub enum Mailbox {
    /// The local adapter: `.eml` files in a temporary directory.
    Outbox(tempfile::TempDir),
    /// The SES adapter against moto, which records what it was asked to send.
    Ses,
}

/// One message as a test reads it: for the outbox the text part, for SES the HTML part
/// (the part moto records).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub subject: String,
    pub body: String,
}

impl ReceivedMail {
    /// The six-digit code in the message.
    pub fn code(&self) -> String {
        let pattern = regex::Regex::new(r"\b(\d{6})\b").unwrap();
        pattern.captures(&self.body).unwrap_or_else(|| panic!("no code in {:?}", self.body))[1].to_owned()
    }

    /// The token of the link in the message.
    pub fn link_token(&self) -> String {
        let pattern = regex::Regex::new(r"#token=([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})").unwrap();
        pattern.captures(&self.body).unwrap_or_else(|| panic!("no link token in {:?}", self.body))[1].to_owned()
    }
}

impl Mailbox {
    pub async fn for_backend(backend: Backend, config: &Config) -> Self {
        match backend {
            Backend::Embedded => Self::Outbox(tempfile::tempdir().expect("temp dir")),
            Backend::DynamoDb | Backend::Lambda => {
                // moto refuses mail from an address that is not a verified identity, as SES does.
                let client = aws_sdk_sesv2::Client::new(&aws_sdk_config());
                let _ = client.create_email_identity().email_identity(&config.mail_from).send().await;
                Self::Ses
            }
        }
    }

    pub(crate) fn mailer(&self, config: &Config) -> Arc<dyn Mailer> {
        let sender = latchkey::kernel::sender(config);
        match self {
            Self::Outbox(dir) => Arc::new(Outbox::new(dir.path(), sender).expect("outbox")),
            Self::Ses => Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(&aws_sdk_config()), &sender)),
        }
    }

    /// Every message sent to `to`, oldest first.
    pub async fn messages_to(&self, to: &str) -> Vec<ReceivedMail> {
        match self {
            Self::Outbox(dir) => {
                let mut files: Vec<_> = std::fs::read_dir(dir.path())
                    .expect("outbox")
                    .map(|entry| entry.unwrap().path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                    .collect();
                files.sort();
                files
                    .into_iter()
                    .filter_map(|path| {
                        let bytes = std::fs::read(&path).unwrap();
                        let message = mail_parser::MessageParser::default().parse(&bytes).expect("an RFC 5322 message");
                        let addressed = message.to()?.first()?.address()? == to;
                        addressed.then(|| ReceivedMail {
                            subject: message.subject().unwrap_or_default().to_owned(),
                            body: message.body_text(0).expect("a text part").into_owned(),
                        })
                    })
                    .collect()
            }
            Self::Ses => {
                // scripts/moto_server.py serves sent mail on its own; plain moto only in its
                // full data dump.
                let endpoint = aws_endpoint();
                let light = http_client().get(format!("{endpoint}/latchkey/ses-messages")).send().await.expect("moto");
                let data: Value = if light.status().is_success() {
                    light.json().await.expect("JSON")
                } else {
                    let dump =
                        http_client().get(format!("{endpoint}/moto-api/data.json")).send().await.expect("moto's data");
                    dump.json::<Value>().await.expect("moto's data is JSON")["ses"].take()
                };
                let mut found = Vec::new();
                collect_ses_messages(&data, to, &mut found);
                found
            }
        }
    }
}

/// Every object with a subject, a body and destinations is one SES message (moto's
/// `data.json` nests them under account and region).
fn collect_ses_messages(value: &Value, to: &str, found: &mut Vec<ReceivedMail>) {
    match value {
        Value::Object(object) if object.contains_key("subject") && object.contains_key("body") => {
            let addressed = object.get("destinations").is_some_and(|d| d.to_string().contains(&format!("\"{to}\"")));
            if addressed {
                found.push(ReceivedMail {
                    subject: object["subject"].as_str().unwrap_or_default().to_owned(),
                    body: object["body"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        Value::Object(object) => object.values().for_each(|v| collect_ses_messages(v, to, found)),
        Value::Array(items) => items.iter().for_each(|v| collect_ses_messages(v, to, found)),
        _ => {}
    }
}
