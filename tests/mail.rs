//! The two mail adapters on their own: the local outbox writes real RFC 5322 messages, and
//! the SES adapter sends through moto's SES v2 and reports refusals cleanly.

use latchkey::domain::Email;
use latchkey::mail::outbox::Outbox;
use latchkey::mail::ses::SesMailer;
use latchkey::mail::templates::{Mail, Templates};
use latchkey::mail::{Mailer, Sender};
use latchkey_tests::{Backend, Mailbox, aws_sdk_config, test_config, unique_email};

fn sender() -> Sender {
    Sender { name: "Acme Auth".into(), address: "auth@acme.test".into() }
}

fn code_mail(to: &str) -> latchkey::mail::OutgoingMail {
    Templates::new("Acme Auth", "https://app.acme.test")
        .render(&Email::parse(to).unwrap(), Mail::EmailCode { code: "042042", valid_minutes: 10 })
}

#[tokio::test]
async fn the_outbox_writes_one_rfc5322_message_per_mail_with_text_and_html_parts() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(dir.path(), sender()).unwrap();
    outbox.send(code_mail("ada@example.com")).await.unwrap();
    outbox.send(code_mail("grace@example.com")).await.unwrap();

    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 2, "one .eml per message and no temporary files left: {files:?}");
    assert!(files.iter().all(|path| path.extension().unwrap() == "eml"));
    let mut files = files;
    files.sort();
    let bytes = std::fs::read(&files[0]).unwrap();
    let message = mail_parser::MessageParser::default().parse(&bytes).expect("RFC 5322");
    assert_eq!(message.from().unwrap().first().unwrap().address(), Some("auth@acme.test"));
    assert_eq!(message.from().unwrap().first().unwrap().name(), Some("Acme Auth"));
    assert_eq!(message.to().unwrap().first().unwrap().address(), Some("ada@example.com"));
    assert_eq!(message.subject(), Some("Your Acme Auth sign-in code"));
    assert!(message.message_id().is_some_and(|id| id.ends_with("@acme.test")));
    assert!(message.date().is_some());
    assert!(message.body_text(0).unwrap().contains("042042"));
    assert!(message.body_html(0).unwrap().contains("<strong>042042</strong>"));
}

#[tokio::test]
async fn ses_sends_through_the_sdk_and_a_refused_sender_is_a_clean_error() {
    let config = test_config();
    let mailbox = Mailbox::for_backend(Backend::DynamoDb, &config).await;
    let client = aws_sdk_sesv2::Client::new(&aws_sdk_config());
    let to = unique_email("ada");
    let verified = Sender { name: "Latchkey".into(), address: config.mail_from.clone() };
    SesMailer::new(client.clone(), &verified).send(code_mail(&to)).await.expect("SES accepts a verified sender");
    let received = mailbox.messages_to(&to).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].subject, "Your Acme Auth sign-in code");
    assert!(received[0].body.contains("042042"));

    let unverified = Sender { name: "Nobody".into(), address: "nobody@unverified.test".into() };
    let error =
        SesMailer::new(client, &unverified).send(code_mail(&to)).await.expect_err("an unverified sender is refused");
    assert!(error.to_string().contains("not verified"), "{error}");
}
