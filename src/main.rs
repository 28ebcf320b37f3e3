mod cli_accounts;

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use portcullis::{
    Config, admin,
    identity::passwords::Passwords,
    oauth::keys::Keys,
    store::{Store, open::Create},
};
use serde_json::Value;
use uuid::Uuid;

/// mimalloc when built with the `mimalloc` feature (README, "Performance").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "OAuth 2.1 authorization server and scope-gated MCP server",
    after_help = "Examples:\n  portcullis serve\n  portcullis org list\n  portcullis user list --org 6f1c… --json\n\nEvery subcommand has --help with an example."
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default): applies migrations, creates the SQLite
    /// file and signing key on first start.
    #[command(
        after_help = "Example:\n  PORTCULLIS_PUBLIC_URL=https://mcp.example.com portcullis serve"
    )]
    Serve,
    /// Apply database migrations (creating a SQLite file if absent) and exit.
    #[command(after_help = "Example:\n  portcullis migrate")]
    Migrate,
    /// Organizations: create, list, rename.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Users: create, list, disable, enable, delete, passwords, unlock.
    #[command(subcommand)]
    User(UserCommand),
    /// Memberships: remove a user from an organization.
    #[command(subcommand)]
    Member(cli_accounts::MemberCommand),
    /// API keys: create, list, revoke.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Registered OAuth clients: list, revoke.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Signing keys: rotate.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Gateway catalogs: check a file.
    /// Machine clients of an org (the client_credentials grant).
    #[command(subcommand)]
    ServiceClient(ServiceClientCommand),
    /// Enterprise identity providers an org trusts (identity assertions).
    #[command(subcommand)]
    EnterpriseIdp(EnterpriseIdpCommand),
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Admin tokens of the provisioning API (/admin/api/v1): create, list, revoke.
    #[command(subcommand)]
    AdminToken(AdminTokenCommand),
}

#[derive(Subcommand)]
enum AdminTokenCommand {
    /// Create an admin token; it is shown once and stored hashed.
    #[command(after_help = "Example:\n  portcullis admin-token create --name billing-sync --json")]
    Create {
        #[arg(long)]
        name: String,
    },
    /// Revoke an admin token by its id; the API refuses it from the next request.
    #[command(after_help = "Example:\n  portcullis admin-token revoke --id 3f0c…")]
    Revoke {
        #[arg(long)]
        id: String,
    },
    /// List admin tokens (ids, names, dates; never the tokens).
    #[command(after_help = "Example:\n  portcullis admin-token list --json")]
    List,
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Validate a gateway catalog file without starting the server.
    #[command(after_help = "Example:\n  portcullis catalog check examples/catalog.toml")]
    Check { file: PathBuf },
    /// Print a catalog for an OpenAPI 3.0/3.1 document (JSON or YAML).
    Import {
        /// The document; written into the catalog's `openapi =` as given.
        file: String,
        /// The upstream's name in the catalog.
        #[arg(long)]
        upstream: String,
        /// Where calls go, e.g. https://api.example.com/v1.
        #[arg(long)]
        base_url: String,
        /// Only operations with this tag (repeatable).
        #[arg(long = "include-tag")]
        include_tags: Vec<String>,
        /// Leave out paths matching this glob (repeatable).
        #[arg(long = "exclude-path")]
        exclude_paths: Vec<String>,
        /// Only this operation, by operationId or "METHOD /path" (repeatable).
        #[arg(long = "operation")]
        operations: Vec<String>,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization; its name may not match another's, ignoring case.
    #[command(after_help = "Example:\n  portcullis org create --name Acme --json")]
    Create {
        #[arg(long)]
        name: String,
        /// The product's own id for the org, matched against identity
        /// provider claims (unique).
        #[arg(long)]
        external_id: Option<String>,
    },
    /// Set (or with an empty value clear) an org's external id.
    SetExternalId {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        external_id: String,
    },
    /// List organizations with their member and admin counts.
    #[command(after_help = "Example:\n  portcullis org list\n  portcullis org list --json")]
    List,
    /// Rename an organization.
    #[command(after_help = "Example:\n  portcullis org rename --org 6f1c… --name \"Acme Corp\"")]
    Rename(cli_accounts::OrgRename),
}

#[derive(Args)]
struct Membership {
    #[arg(long)]
    email: String,
    #[arg(long)]
    org: Uuid,
    #[arg(long, default_value = "member")]
    role: String,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user in an organization. The password is asked for on the
    /// terminal (not shown), or read from stdin with --password-stdin or a pipe.
    #[command(
        after_help = "Examples:\n  portcullis user create --email ana@example.com --org 6f1c… --role admin\n  printf '%s' \"$PASSWORD\" | portcullis user create --email ana@example.com --org 6f1c… --role admin --password-stdin"
    )]
    Create {
        #[command(flatten)]
        membership: Membership,
        /// Read the password from stdin instead of asking on the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Add an existing user to an organization, or change their role there.
    #[command(
        after_help = "Example:\n  portcullis user add-to-org --email ana@example.com --org 6f1c… --role viewer"
    )]
    AddToOrg {
        #[command(flatten)]
        membership: Membership,
    },
    /// List users with their organizations and roles, and whether disabled.
    #[command(
        after_help = "Examples:\n  portcullis user list\n  portcullis user list --org 6f1c… --json"
    )]
    List(cli_accounts::UserList),
    /// Disable a user: signed out, cannot sign in, keys and apps refused.
    #[command(after_help = "Example:\n  portcullis user disable --email ana@example.com")]
    Disable(cli_accounts::ByEmail),
    /// Enable a disabled user again; their keys and apps work again.
    #[command(after_help = "Example:\n  portcullis user enable --email ana@example.com")]
    Enable(cli_accounts::ByEmail),
    /// Delete a user; their keys and apps are revoked, their calls stay in the audit log.
    #[command(after_help = "Example:\n  portcullis user delete --email ana@example.com")]
    Delete(cli_accounts::ByEmail),
    /// Print a one-time link (30 minutes) where the user chooses a new password.
    #[command(after_help = "Example:\n  portcullis user reset-password --email ana@example.com")]
    ResetPassword(cli_accounts::ByEmail),
    /// Set a user's password (asked on the terminal, not shown); ends their sessions.
    #[command(
        after_help = "Examples:\n  portcullis user set-password --email ana@example.com\n  printf '%s' \"$PASSWORD\" | portcullis user set-password --email ana@example.com --password-stdin"
    )]
    SetPassword(cli_accounts::SetPassword),
    /// Lift the sign-in throttle of an account after failed sign-ins.
    #[command(after_help = "Example:\n  portcullis user unlock --email ana@example.com")]
    Unlock(cli_accounts::ByEmail),
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Mint an API key for a user in an organization; the key is shown once.
    #[command(
        after_help = "Example:\n  portcullis apikey create --email ana@example.com --org 6f1c… --scopes \"mcp:read mcp:write\" --name laptop --json"
    )]
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        scopes: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke an API key by its id; clients using it are refused within 5 s.
    #[command(after_help = "Example:\n  portcullis apikey revoke 3kq9…")]
    Revoke { id: String },
    /// List a user's live API keys.
    #[command(after_help = "Example:\n  portcullis apikey list --email ana@example.com")]
    List {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// List registered OAuth clients.
    #[command(after_help = "Example:\n  portcullis client list --json")]
    List,
    /// Revoke a client and every grant issued to it.
    #[command(after_help = "Example:\n  portcullis client revoke 0b7e…")]
    Revoke { client_id: String },
}

#[derive(Subcommand)]
enum ServiceClientCommand {
    /// Create one; prints its client_secret once unless keys are given.
    Create {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        name: String,
        /// Role ceiling: admin, member or viewer.
        #[arg(long, default_value = "member")]
        role: String,
        #[arg(long)]
        scopes: Option<String>,
        /// private_key_jwt with the keys at this URL.
        #[arg(long, conflicts_with = "jwks_file")]
        jwks_uri: Option<String>,
        /// private_key_jwt with the JWKS in this file.
        #[arg(long)]
        jwks_file: Option<PathBuf>,
    },
    List {
        #[arg(long)]
        org: Uuid,
    },
    Revoke {
        client_id: Uuid,
    },
}

#[derive(Subcommand)]
enum EnterpriseIdpCommand {
    /// Trust an issuer for an org (or change its settings).
    Trust {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        jwks_uri: String,
        /// Asymmetric algorithms, e.g. "RS256 ES256" (the default).
        #[arg(long)]
        algorithms: Option<String>,
        /// Link an unknown subject to the member with the assertion's email.
        #[arg(long)]
        link_by_email: bool,
    },
    List {
        #[arg(long)]
        org: Uuid,
    },
    Remove {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        issuer: String,
    },
    /// Link an enterprise subject to an existing user.
    Link {
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new signing key active; the previous stays in JWKS.
    #[command(after_help = "Example:\n  portcullis keys rotate")]
    Rotate,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "portcullis=info,tower_http=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        // One JSON object per line; the request span's fields (request id,
        // method, route) ride along on every line logged inside a request.
        portcullis::config::LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        portcullis::config::LogFormat::Text => logs.init(),
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if !config.ignored_env_vars.is_empty() {
        tracing::warn!(
            variables = %config.ignored_env_vars.join(", "),
            "ignoring PORTCULLIS_* environment variables that name no configuration key"
        );
    }
    let command = cli.command.unwrap_or(Command::Serve);
    if let Some(accounts_command) = account_command(&command) {
        return match run_accounts(accounts_command, &config).await {
            Ok(printed) => {
                if cli.json {
                    println!("{}", printed.value);
                } else {
                    println!("{}", printed.text);
                }
                ExitCode::SUCCESS
            }
            Err(message) => {
                if cli.json {
                    println!("{}", serde_json::json!({ "error": message }));
                } else {
                    eprintln!("error: {message}");
                }
                ExitCode::FAILURE
            }
        };
    }
    match run(command, config).await {
        Ok(Some(value)) => {
            print(&value, cli.json);
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(message) => {
            if cli.json {
                println!("{}", serde_json::json!({ "error": message }));
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The account commands (`cli_accounts`), which print tables for people.
fn account_command(command: &Command) -> Option<cli_accounts::Command> {
    use cli_accounts::{ByEmail, Command as A};
    let email = |b: &ByEmail| ByEmail {
        email: b.email.clone(),
    };
    Some(match command {
        Command::Org(OrgCommand::List) => A::OrgList,
        Command::Org(OrgCommand::Rename(r)) => A::OrgRename(cli_accounts::OrgRename {
            org: r.org,
            name: r.name.clone(),
        }),
        Command::User(UserCommand::List(l)) => A::UserList(cli_accounts::UserList { org: l.org }),
        Command::User(UserCommand::Disable(b)) => A::Disable(email(b)),
        Command::User(UserCommand::Enable(b)) => A::Enable(email(b)),
        Command::User(UserCommand::Delete(b)) => A::Delete(email(b)),
        Command::User(UserCommand::ResetPassword(b)) => A::ResetPassword(email(b)),
        Command::User(UserCommand::SetPassword(s)) => A::SetPassword(cli_accounts::SetPassword {
            email: s.email.clone(),
            password_stdin: s.password_stdin,
        }),
        Command::User(UserCommand::Unlock(b)) => A::Unlock(email(b)),
        Command::Member(cli_accounts::MemberCommand::Remove { email, org }) => {
            A::Member(cli_accounts::MemberCommand::Remove {
                email: email.clone(),
                org: *org,
            })
        }
        _ => return None,
    })
}

async fn run_accounts(
    command: cli_accounts::Command,
    config: &Config,
) -> Result<cli_accounts::Printed, String> {
    let store = Store::open(&config.database_url, Create::Never)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    cli_accounts::run(command, &store, config.issuer()).await
}

fn print(value: &Value, json: bool) {
    if json {
        println!("{value}");
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) => println!("{k}: {s}"),
                    other => println!("{k}: {other}"),
                }
            }
        }
        other => println!("{other}"),
    }
}

async fn run(command: Command, config: Config) -> Result<Option<Value>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    if let Command::Serve = command {
        return serve(config).await.map(|()| None);
    }
    if let Command::Keys(KeysCommand::Rotate) = command {
        let retire_after = config.access_token_ttl * 2;
        let kid = Keys::rotate(&config.keys_dir, retire_after).map_err(|e| err(&e))?;
        return Ok(Some(serde_json::json!({ "kid": kid })));
    }
    if let Command::Catalog(CatalogCommand::Check { file }) = command {
        return check_catalog(&config, &file).map(Some);
    }
    if let Command::Catalog(CatalogCommand::Import {
        file,
        upstream,
        base_url,
        include_tags,
        exclude_paths,
        operations,
    }) = command
    {
        let filter = portcullis::gateway::openapi::Filter {
            include_tags,
            exclude_paths,
            operations,
        };
        let text =
            portcullis::gateway::catalog::import_catalog(&file, &upstream, &base_url, &filter)?;
        print!("{text}");
        return Ok(None);
    }
    // Only `migrate` may create the database; the administration commands
    // say which one they looked for instead of creating an empty one.
    let create = match command {
        Command::Migrate => Create::IfMissing,
        _ => Create::Never,
    };
    let store = Store::open(&config.database_url, create)
        .await
        .map_err(|e| err(&e))?;
    store.migrate().await.map_err(|e| err(&e))?;
    let result = match command {
        Command::Serve | Command::Keys(_) | Command::Catalog(_) => unreachable!("handled above"),
        Command::Member(_)
        | Command::Org(OrgCommand::List | OrgCommand::Rename(_))
        | Command::User(
            UserCommand::List(_)
            | UserCommand::Disable(_)
            | UserCommand::Enable(_)
            | UserCommand::Delete(_)
            | UserCommand::ResetPassword(_)
            | UserCommand::SetPassword(_)
            | UserCommand::Unlock(_),
        ) => unreachable!("account commands run in cli_accounts"),
        Command::Migrate => Ok(serde_json::json!({ "migrated": true })),
        Command::Org(OrgCommand::Create {
            name,
            external_id: None,
        }) => admin::create_org(&store, &name).await,
        Command::Org(OrgCommand::Create {
            name,
            external_id: Some(external_id),
        }) => portcullis::federation::admin::create_org(&store, &name, &external_id).await,
        Command::Org(OrgCommand::SetExternalId { org, external_id }) => {
            portcullis::federation::admin::set_external_id(&store, org, &external_id).await
        }
        Command::User(UserCommand::Create {
            membership,
            password_stdin,
        }) => {
            let password = cli_accounts::read_password(password_stdin)?;
            let password = password.as_str();
            let role = admin::parse_role(&membership.role).map_err(|e| err(&e))?;
            let passwords = Passwords::new(1);
            admin::create_user(
                &store,
                &passwords,
                &membership.email,
                password,
                membership.org,
                role,
            )
            .await
        }
        Command::User(UserCommand::AddToOrg { membership }) => {
            let role = admin::parse_role(&membership.role).map_err(|e| err(&e))?;
            admin::add_to_org(&store, &membership.email, membership.org, role).await
        }
        Command::Apikey(ApiKeyCommand::Create {
            email,
            org,
            scopes,
            name,
        }) => {
            admin::create_api_key(
                &store,
                &config.api_key_prefix,
                &email,
                org,
                scopes.as_deref(),
                name.as_deref(),
            )
            .await
        }
        Command::Apikey(ApiKeyCommand::Revoke { id }) => admin::revoke_api_key(&store, &id).await,
        Command::Apikey(ApiKeyCommand::List { email }) => {
            admin::list_api_keys(&store, &email).await
        }
        Command::Client(ClientCommand::List) => admin::list_clients(&store).await,
        Command::Client(ClientCommand::Revoke { client_id }) => {
            admin::revoke_client(&store, &client_id).await
        }
        Command::ServiceClient(command) => service_client(&store, command).await,
        Command::EnterpriseIdp(command) => enterprise_idp(&store, command).await,
        Command::AdminToken(AdminTokenCommand::Create { name }) => {
            portcullis::provisioning::tokens::create(&store, &name).await
        }
        Command::AdminToken(AdminTokenCommand::Revoke { id }) => {
            portcullis::provisioning::tokens::revoke(&store, &id).await
        }
        Command::AdminToken(AdminTokenCommand::List) => {
            portcullis::provisioning::tokens::list(&store).await
        }
    };
    result.map(Some).map_err(|e| err(&e))
}

async fn service_client(store: &Store, command: ServiceClientCommand) -> admin::Result<Value> {
    use portcullis::machine_admin::{self as m, ServiceAuth};
    match command {
        ServiceClientCommand::Create {
            org,
            name,
            role,
            scopes,
            jwks_uri,
            jwks_file,
        } => {
            let role = admin::parse_role(&role)?;
            let auth = match (jwks_uri, jwks_file) {
                (Some(uri), _) => ServiceAuth::JwksUri(uri),
                (None, Some(file)) => {
                    ServiceAuth::Jwks(std::fs::read_to_string(&file).map_err(|e| {
                        admin::AdminError::Invalid(format!("{}: {e}", file.display()))
                    })?)
                }
                (None, None) => ServiceAuth::Secret,
            };
            m::create_service_client(store, org, &name, role, scopes.as_deref(), auth).await
        }
        ServiceClientCommand::List { org } => m::list_service_clients(store, org).await,
        ServiceClientCommand::Revoke { client_id } => {
            m::revoke_service_client(store, client_id, None).await
        }
    }
}

async fn enterprise_idp(store: &Store, command: EnterpriseIdpCommand) -> admin::Result<Value> {
    use portcullis::machine_admin as m;
    match command {
        EnterpriseIdpCommand::Trust {
            org,
            issuer,
            jwks_uri,
            algorithms,
            link_by_email,
        } => {
            m::trust_idp(
                store,
                org,
                &issuer,
                &jwks_uri,
                algorithms.as_deref(),
                link_by_email,
            )
            .await
        }
        EnterpriseIdpCommand::List { org } => m::list_idps(store, org).await,
        EnterpriseIdpCommand::Remove { org, issuer } => m::remove_idp(store, org, &issuer).await,
        EnterpriseIdpCommand::Link {
            issuer,
            subject,
            email,
        } => m::link_identity(store, &issuer, &subject, &email).await,
    }
}

fn check_catalog(config: &Config, file: &std::path::Path) -> Result<Value, String> {
    let catalog = portcullis::gateway::catalog::load(file, &|name| std::env::var(name).ok())
        .map_err(|e| e.to_string())?;
    let policy = portcullis::mcp::policy::ScopePolicy::new(&config.tool_scopes);
    let set = portcullis::mcp::server::ToolSet::new(&policy, &catalog)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let tools: Vec<Value> = catalog
        .tools
        .iter()
        .map(|t| {
            let entry = set.get(&t.name).expect("every catalog tool is in the set");
            serde_json::json!({ "name": t.name, "upstream": t.upstream.name, "scope": entry.required.as_str(), "destructive": entry.destructive })
        })
        .collect();
    Ok(serde_json::json!({ "valid": true, "file": file.display().to_string(), "tools": tools }))
}

async fn serve(config: Config) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let public_url = config.public_url.clone();
    let metrics_listen = config.metrics_listen;
    let keys_dir = config.keys_dir.clone();
    let had_keys = std::fs::read_dir(&keys_dir).is_ok_and(|mut d| d.next().is_some());
    let database = portcullis::config::redact_password(&config.database_url);
    let state = portcullis::build(config).await.map_err(|e| e.to_string())?;
    tracing::info!(%database, "database ready (migrations applied)");
    if !had_keys {
        tracing::info!(keys_dir = %keys_dir.display(), "created a signing key");
    }
    first_run(&state, &public_url).await?;
    if let Some(address) = metrics_listen {
        match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => {
                tracing::info!("metrics at http://{address}/metrics");
                tokio::spawn(portcullis::metrics::serve(listener, state.clone()));
            }
            // Metrics are for operators; a taken port must not stop the service.
            Err(e) => tracing::error!(%address, error = %e, "cannot serve metrics"),
        }
    }
    tracing::info!(
        "Portcullis listening on {} (public URL {public_url})",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    portcullis::run(listener, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// What to do next, said once at start (README "First run"): the
/// unattended bootstrap admin, or the one-time setup URL while no user
/// exists, or where to sign in.
async fn first_run(state: &portcullis::AppState, public_url: &str) -> Result<(), String> {
    if let Some(made) =
        portcullis::web::setup::bootstrap_from_env(&state.store, |name| std::env::var(name).ok())
            .await?
    {
        tracing::info!(
            "created organization {:?} and its admin {} from PORTCULLIS_BOOTSTRAP_ADMIN_*; sign in at {public_url}/login",
            made.org_name,
            made.email
        );
        return Ok(());
    }
    if state.store.user_count().await.map_err(|e| e.to_string())? == 0 {
        let token = state.setup.open();
        tracing::info!(
            "no user exists yet: open {public_url}/setup?token={token} to create the first organization and admin \
             (works once, until restart; or set PORTCULLIS_BOOTSTRAP_ADMIN_EMAIL and PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD_FILE)"
        );
    } else {
        tracing::info!("console at {public_url}/ (sign in at {public_url}/login)");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down");
}
