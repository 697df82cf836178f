//! Every message Latchkey sends, rendered as text and HTML from one description, so the two
//! parts never disagree. The product name and the app's base URL come from configuration.

use super::OutgoingMail;
use crate::domain::Email;

/// A security notice (ASVS 2.5.5): something changed that the owner should know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    PasswordChanged,
    TotpEnabled,
    TotpDisabled,
    EmailCodesEnabled,
    EmailCodesDisabled,
    RecoveryCodeUsed {
        remaining: usize,
    },
    /// Sent to the old address.
    EmailChanged,
    /// Sent to the current address when a new one is asked for (it is not used until confirmed).
    EmailChangeRequested,
    IdentityLinked,
    IdentityUnlinked,
}

/// What a message is about, with the secret it carries, if any.
pub enum Mail<'a> {
    EmailCode {
        code: &'a str,
        valid_minutes: i64,
    },
    PasswordReset {
        token: &'a str,
        valid_minutes: i64,
    },
    VerifyEmail {
        token: &'a str,
        valid_hours: i64,
    },
    /// Sent to a new address: the link confirms it (signed in as the account).
    ConfirmEmailChange {
        token: &'a str,
        valid_hours: i64,
    },
    /// A link that lets the owner sign in past a lockout.
    Unlock {
        token: &'a str,
        valid_minutes: i64,
    },
    Notice(Notice),
}

pub struct Templates {
    product: String,
    app_url: String,
}

/// A message's parts before rendering: paragraphs, then one highlighted value (a code or a link).
struct Draft {
    subject: String,
    paragraphs: Vec<String>,
    highlight: Option<Highlight>,
}

enum Highlight {
    Code(String),
    Link { url: String, label: &'static str },
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

const NOT_YOU: &str = "If this was not you, reset your password and review your account's second factors now.";

impl Templates {
    pub fn new(product: impl Into<String>, app_url: impl Into<String>) -> Self {
        Self { product: product.into(), app_url: app_url.into().trim_end_matches('/').to_owned() }
    }

    pub fn render(&self, to: &Email, mail: Mail<'_>) -> OutgoingMail {
        let product = &self.product;
        let draft = match mail {
            Mail::EmailCode { code, valid_minutes } => Draft {
                subject: format!("Your {product} sign-in code"),
                paragraphs: vec![
                    format!(
                        "Use this code to sign in to {product}. It is valid for {valid_minutes} minutes and works once."
                    ),
                    "If you did not ask for it, ignore this message: nobody can use it without your password.".into(),
                ],
                highlight: Some(Highlight::Code(code.to_owned())),
            },
            Mail::PasswordReset { token, valid_minutes } => Draft {
                subject: format!("Reset your {product} password"),
                paragraphs: vec![
                    format!(
                        "Somebody asked to reset the password of your {product} account. The link is valid for {valid_minutes} minutes and works once."
                    ),
                    "If it was not you, ignore this message: your password stays as it is.".into(),
                ],
                // In the fragment, so the token never reaches a server log or a Referer header.
                highlight: Some(Highlight::Link {
                    url: format!("{}/reset-password#token={token}", self.app_url),
                    label: "Choose a new password",
                }),
            },
            Mail::VerifyEmail { token, valid_hours } => Draft {
                subject: format!("Confirm your email address for {product}"),
                paragraphs: vec![format!(
                    "Confirm that this address belongs to your {product} account. The link is valid for {valid_hours} hours."
                )],
                highlight: Some(Highlight::Link {
                    url: format!("{}/verify-email#token={token}", self.app_url),
                    label: "Confirm my email address",
                }),
            },
            Mail::ConfirmEmailChange { token, valid_hours } => Draft {
                subject: format!("Confirm your new email address for {product}"),
                paragraphs: vec![
                    format!(
                        "Somebody asked to make this the address of a {product} account. It becomes the account's address only when you open this link while signed in to that account. The link is valid for {valid_hours} hours."
                    ),
                    "If it was not you, ignore this message: nothing changes.".into(),
                ],
                highlight: Some(Highlight::Link {
                    url: format!("{}/confirm-email#token={token}", self.app_url),
                    label: "Confirm my new email address",
                }),
            },
            Mail::Unlock { token, valid_minutes } => Draft {
                subject: format!("Sign in to {product} past a lockout"),
                paragraphs: vec![
                    format!(
                        "Sign-in to your {product} account is paused after failed attempts. Open this link and sign in with your password to get past the pause now. The link is valid for {valid_minutes} minutes and works once."
                    ),
                    "If you did not ask for it, someone may be guessing your password: ignore this message, and choose a strong password.".into(),
                ],
                highlight: Some(Highlight::Link {
                    url: format!("{}/unlock#token={token}", self.app_url),
                    label: "Sign in now",
                }),
            },
            Mail::Notice(notice) => {
                let (subject, what) = match notice {
                    Notice::PasswordChanged => {
                        ("Your password was changed", "The password of your account was changed.".to_owned())
                    }
                    Notice::TotpEnabled => (
                        "Authenticator app sign-in turned on",
                        "An authenticator app (TOTP) is now a second factor of your account.".to_owned(),
                    ),
                    Notice::TotpDisabled => (
                        "Authenticator app sign-in turned off",
                        "The authenticator app (TOTP) is no longer a second factor of your account.".to_owned(),
                    ),
                    Notice::EmailCodesEnabled => {
                        ("Email codes turned on", "Sign-in now asks for a code sent to this address.".to_owned())
                    }
                    Notice::EmailCodesDisabled => {
                        ("Email codes turned off", "Sign-in no longer asks for a code sent to this address.".to_owned())
                    }
                    Notice::EmailChanged => (
                        "Your email address was changed",
                        "Your account now uses another email address; this one no longer signs in or receives its mail.".to_owned(),
                    ),
                    Notice::EmailChangeRequested => (
                        "A new email address was requested",
                        "Somebody signed in to your account asked to change its email address. It changes only when the new address is confirmed from the link sent to it. To cancel the change, reset your password: that voids the request and ends every session.".to_owned(),
                    ),
                    Notice::IdentityLinked => (
                        "A sign-in provider was linked",
                        "Your account can now be signed in to with another provider account (such as Google or Apple).".to_owned(),
                    ),
                    Notice::IdentityUnlinked => (
                        "A sign-in provider was removed",
                        "A provider account can no longer be used to sign in to your account.".to_owned(),
                    ),
                    Notice::RecoveryCodeUsed { remaining } => (
                        "A recovery code was used",
                        format!(
                            "A recovery code was used to sign in to your account. {remaining} unused recovery codes remain."
                        ),
                    ),
                };
                Draft {
                    subject: format!("{product}: {subject}"),
                    paragraphs: vec![what, NOT_YOU.into()],
                    highlight: None,
                }
            }
        };
        self.finish(to, draft)
    }

    fn finish(&self, to: &Email, draft: Draft) -> OutgoingMail {
        let mut text = String::new();
        let mut html = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body style=\"font-family: sans-serif\">",
            escape(&draft.subject)
        );
        for paragraph in &draft.paragraphs {
            text.push_str(paragraph);
            text.push_str("\n\n");
            html.push_str(&format!("<p>{}</p>", escape(paragraph)));
        }
        match &draft.highlight {
            Some(Highlight::Code(code)) => {
                text.push_str(&format!("    {code}\n\n"));
                html.push_str(&format!(
                    "<p style=\"font-size: 28px; letter-spacing: 4px\"><strong>{}</strong></p>",
                    escape(code)
                ));
            }
            Some(Highlight::Link { url, label }) => {
                text.push_str(&format!("{label}: {url}\n\n"));
                html.push_str(&format!("<p><a href=\"{0}\">{1}</a></p><p>{0}</p>", escape(url), escape(label)));
            }
            None => {}
        }
        text.push_str(&format!("-- {}\n", self.product));
        html.push_str(&format!("<p>&mdash; {}</p></body></html>", escape(&self.product)));
        OutgoingMail { to: to.clone(), subject: draft.subject, text, html }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_carry_the_code_and_the_html_part_escapes_the_product_name() {
        let templates = Templates::new("Acme <Auth>", "https://app.example.com/");
        let to = Email::parse("ada@example.com").unwrap();
        let mail = templates.render(&to, Mail::EmailCode { code: "123456", valid_minutes: 10 });
        assert_eq!(mail.subject, "Your Acme <Auth> sign-in code");
        assert!(mail.text.contains("123456") && mail.html.contains("123456"));
        assert!(mail.html.contains("Acme &lt;Auth&gt;") && !mail.html.contains("<Auth>"));
        let reset = templates.render(&to, Mail::PasswordReset { token: "t0k", valid_minutes: 30 });
        assert!(reset.text.contains("https://app.example.com/reset-password#token=t0k"), "{}", reset.text);
    }
}
