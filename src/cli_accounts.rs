//! The account administration commands (README "Accounts"): tables for
//! people, one JSON object with `--json`. The operations themselves are
//! `portcullis::identity::accounts`, shared with the console.

use std::io::{IsTerminal, Read};

use clap::{Args, Subcommand};
use portcullis::{
    identity::{accounts, passwords::MIN_PASSWORD_CHARS},
    store::{Store, UserSummary},
};
use serde_json::{Value, json};
use uuid::Uuid;

/// What a command printed: the JSON object, and the table people read.
pub struct Printed {
    pub value: Value,
    pub text: String,
}

#[derive(Args)]
pub struct ByEmail {
    /// The user's email (compared ignoring case).
    #[arg(long)]
    pub email: String,
}

#[derive(Args)]
pub struct OrgRename {
    /// The organization's id (see `portcullis org list`).
    #[arg(long)]
    pub org: Uuid,
    /// The new name; another organization may not have it, ignoring case.
    #[arg(long)]
    pub name: String,
}

#[derive(Args)]
pub struct UserList {
    /// Only the members of this organization (each with all their orgs).
    #[arg(long)]
    pub org: Option<Uuid>,
}

#[derive(Args)]
pub struct SetPassword {
    /// The user's email (compared ignoring case).
    #[arg(long)]
    pub email: String,
    /// Read the password from stdin instead of asking on the terminal.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Remove a user from an organization; their API keys and connected apps
    /// in that organization are revoked with it. The only admin cannot be
    /// removed.
    #[command(
        after_help = "Example:\n  portcullis member remove --email ana@example.com --org 6f1c…"
    )]
    Remove {
        #[arg(long)]
        email: String,
        #[arg(long)]
        org: Uuid,
    },
}

pub enum Command {
    OrgList,
    OrgRename(OrgRename),
    UserList(UserList),
    Disable(ByEmail),
    Enable(ByEmail),
    Delete(ByEmail),
    ResetPassword(ByEmail),
    SetPassword(SetPassword),
    Unlock(ByEmail),
    Member(MemberCommand),
}

/// The password for a new or changed account: from stdin when asked
/// (`--password-stdin`) or when stdin is not a terminal (a pipe), otherwise
/// typed twice on the terminal without echo.
pub fn read_password(from_stdin: bool) -> Result<String, String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        return Ok(password.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password(format!(
        "Password (at least {MIN_PASSWORD_CHARS} characters, not shown): "
    ))
    .map_err(|e| format!("cannot read the password: {e}"))?;
    let second = rpassword::prompt_password("The same password again: ")
        .map_err(|e| format!("cannot read the password: {e}"))?;
    if first != second {
        return Err("the two passwords differ; nothing was changed".into());
    }
    Ok(first)
}

/// Columns padded to their widest cell; people read it, scripts use `--json`.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| {
            format!(
                "{}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_else(|_| unix.to_string())
}

fn user_json(u: &UserSummary) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "created_at": u.created_at,
        "disabled": u.disabled_at.is_some(),
        "disabled_at": u.disabled_at,
        "memberships": u.memberships.iter().map(|m| json!({
            "org_id": m.org_id, "org_name": m.org_name, "role": m.role,
        })).collect::<Vec<_>>(),
    })
}

pub async fn run(command: Command, store: &Store, issuer: &str) -> Result<Printed, String> {
    let err = |e: accounts::AccountError| e.to_string();
    Ok(match command {
        Command::OrgList => {
            let orgs = accounts::list_orgs(store).await.map_err(err)?;
            let rows: Vec<Vec<String>> = orgs
                .iter()
                .map(|o| {
                    vec![
                        o.id.to_string(),
                        o.name.clone(),
                        o.members.to_string(),
                        o.admins.to_string(),
                        date(o.created_at),
                    ]
                })
                .collect();
            Printed {
                text: if orgs.is_empty() {
                    "No organizations yet. Create one: portcullis org create --name NAME".into()
                } else {
                    table(&["ID", "NAME", "MEMBERS", "ADMINS", "CREATED"], &rows)
                },
                value: json!({ "orgs": orgs }),
            }
        }
        Command::OrgRename(r) => {
            let org = accounts::rename_org(store, r.org, &r.name)
                .await
                .map_err(err)?;
            Printed {
                text: format!("Organization {} is now named {:?}.", org.id, org.name),
                value: json!({ "id": org.id, "name": org.name }),
            }
        }
        Command::UserList(l) => {
            let users = accounts::list_users(store, l.org).await.map_err(err)?;
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    let orgs: Vec<String> = u
                        .memberships
                        .iter()
                        .filter(|m| l.org.is_none_or(|o| o == m.org_id))
                        .map(|m| format!("{} ({})", m.org_name, m.role))
                        .collect();
                    vec![
                        u.id.to_string(),
                        u.email.clone(),
                        if u.disabled_at.is_some() {
                            "disabled".into()
                        } else {
                            "active".into()
                        },
                        if orgs.is_empty() {
                            "—".into()
                        } else {
                            orgs.join(", ")
                        },
                    ]
                })
                .collect();
            Printed {
                text: if users.is_empty() {
                    "No users.".into()
                } else {
                    table(&["ID", "EMAIL", "STATUS", "ORGANIZATIONS (ROLE)"], &rows)
                },
                value: json!({ "users": users.iter().map(user_json).collect::<Vec<_>>() }),
            }
        }
        Command::Disable(b) => {
            let user = accounts::find_user(store, &b.email).await.map_err(err)?;
            accounts::disable_user(store, user.id).await.map_err(err)?;
            Printed {
                text: format!(
                    "{} is disabled: signed out, cannot sign in, and their API keys and apps are refused within 5 seconds.",
                    user.email
                ),
                value: json!({ "id": user.id, "email": user.email, "disabled": true }),
            }
        }
        Command::Enable(b) => {
            let user = accounts::find_user(store, &b.email).await.map_err(err)?;
            accounts::enable_user(store, user.id).await.map_err(err)?;
            Printed {
                text: format!(
                    "{} is enabled again; their API keys and apps work again.",
                    user.email
                ),
                value: json!({ "id": user.id, "email": user.email, "disabled": false }),
            }
        }
        Command::Delete(b) => {
            let user = accounts::find_user(store, &b.email).await.map_err(err)?;
            let revoked = accounts::delete_user(store, user.id).await.map_err(err)?;
            Printed {
                text: format!(
                    "{} was deleted; {} connected app(s) and {} API key(s) revoked. Their calls stay in the audit log.",
                    user.email,
                    revoked.grants.len(),
                    revoked.api_keys.len()
                ),
                value: json!({
                    "id": user.id, "email": user.email, "deleted": true,
                    "revoked_grants": revoked.grants.len(), "revoked_api_keys": revoked.api_keys.len(),
                }),
            }
        }
        Command::ResetPassword(b) => {
            let link = accounts::issue_reset_link(store, issuer, &b.email)
                .await
                .map_err(err)?;
            Printed {
                text: format!(
                    "Send this link to {} (valid until {}, 30 minutes, once):\n{}",
                    link.email,
                    date(link.expires_at),
                    link.url
                ),
                value: json!({ "user_id": link.user_id, "email": link.email, "url": link.url, "expires_at": link.expires_at }),
            }
        }
        Command::SetPassword(s) => {
            let user = accounts::find_user(store, &s.email).await.map_err(err)?;
            let password = read_password(s.password_stdin)?;
            let passwords = portcullis::identity::passwords::Passwords::new(1);
            accounts::set_password(store, &passwords, &user, &password)
                .await
                .map_err(err)?;
            Printed {
                text: format!(
                    "The password of {} was changed; their browser sessions were ended.",
                    user.email
                ),
                value: json!({ "id": user.id, "email": user.email, "password_set": true }),
            }
        }
        Command::Unlock(b) => {
            let user = accounts::find_user(store, &b.email).await.map_err(err)?;
            accounts::unlock_sign_in(store, &user.email)
                .await
                .map_err(err)?;
            Printed {
                text: format!(
                    "Sign-in for {} is unlocked on every instance (applied at their next attempt).",
                    user.email
                ),
                value: json!({ "id": user.id, "email": user.email, "unlocked": true }),
            }
        }
        Command::Member(MemberCommand::Remove { email, org }) => {
            let user = accounts::find_user(store, &email).await.map_err(err)?;
            let revoked = accounts::remove_member(store, user.id, org)
                .await
                .map_err(err)?;
            Printed {
                text: format!(
                    "{} was removed from organization {org}; {} connected app(s) and {} API key(s) there revoked.",
                    user.email,
                    revoked.grants.len(),
                    revoked.api_keys.len()
                ),
                value: json!({
                    "user_id": user.id, "org_id": org, "removed": true,
                    "revoked_grants": revoked.grants.len(), "revoked_api_keys": revoked.api_keys.len(),
                }),
            }
        }
    })
}
