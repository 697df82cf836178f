//! The local mail adapter: every message becomes `<outbox>/<time>-<id>.eml`, readable with
//! any mail client, and one log line names its recipient and subject (never its content,
//! which carries codes and links).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use mail_builder::MessageBuilder;
use time::OffsetDateTime;

use super::{MailError, Mailer, OutgoingMail, Sender};

pub struct Outbox {
    dir: PathBuf,
    from: Sender,
}

impl Outbox {
    pub fn new(dir: &Path, from: Sender) -> std::io::Result<Self> {
        crate::private_files::create_dir(dir)?;
        Ok(Self { dir: dir.to_owned(), from })
    }
}

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError> {
        let id = uuid::Uuid::now_v7();
        let now = OffsetDateTime::now_utc();
        let domain = self.from.address.rsplit_once('@').map_or("localhost", |(_, domain)| domain);
        let message = MessageBuilder::new()
            .from((self.from.name.as_str(), self.from.address.as_str()))
            .to(mail.to.as_str())
            .subject(mail.subject.as_str())
            .message_id(format!("{id}@{domain}"))
            .date(now.unix_timestamp())
            .text_body(mail.text.as_str())
            .html_body(mail.html.as_str())
            .write_to_vec()
            .map_err(|error| MailError(error.to_string()))?;
        // It carries codes and links: only the server's user may read it.
        let path = self.dir.join(format!("{}-{id}.eml", now.unix_timestamp_nanos()));
        crate::private_files::write_atomically(&path, &message).await.map_err(|error| MailError(error.to_string()))?;
        tracing::info!(to = %mail.to.as_str(), subject = %mail.subject, file = %path.display(), "mail written to the outbox");
        Ok(())
    }
}
