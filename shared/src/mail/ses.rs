//! The AWS mail adapter: Amazon SES v2 `SendEmail` with a text and an HTML part.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::DisplayErrorContext;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use super::{MailError, Mailer, OutgoingMail, Sender};

pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    pub fn new(client: Client, from: &Sender) -> Self {
        Self { client, from: from.to_string() }
    }
}

fn utf8(data: String) -> Result<Content, MailError> {
    Content::builder().data(data).charset("UTF-8").build().map_err(|error| MailError(error.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError> {
        let to = mail.to.as_str().to_owned();
        let body = Body::builder().text(utf8(mail.text)?).html(utf8(mail.html)?).build();
        let message = Message::builder().subject(utf8(mail.subject.clone())?).body(body).build();
        let sent = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|error| MailError(DisplayErrorContext(error).to_string()))?;
        // The address is personal data; the SES message id finds the message if needed.
        tracing::info!(subject = %mail.subject, message_id = sent.message_id().unwrap_or_default(), "mail sent through SES");
        Ok(())
    }
}
