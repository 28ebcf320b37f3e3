use std::{io::Read, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use portcullis::{Config, admin, identity::passwords::Passwords, oauth::keys::Keys, store::Store};
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
    about = "OAuth 2.1 authorization server and scope-gated MCP server"
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
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    #[command(subcommand)]
    Org(OrgCommand),
    #[command(subcommand)]
    User(UserCommand),
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    #[command(subcommand)]
    Client(ClientCommand),
    #[command(subcommand)]
    Keys(KeysCommand),
    #[command(subcommand)]
    Catalog(CatalogCommand),
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Validate a gateway catalog file without starting the server.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
enum OrgCommand {
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
    /// Create a user; the password is read from stdin.
    Create {
        #[command(flatten)]
        membership: Membership,
        /// Read the password from stdin (the only way; kept for clarity in scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    AddToOrg {
        #[command(flatten)]
        membership: Membership,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
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
    Revoke {
        id: String,
    },
    List {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    List,
    Revoke { client_id: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new signing key active; the previous stays in JWKS.
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
    if !config.ignored_env_vars.is_empty() {
        tracing::warn!(
            variables = %config.ignored_env_vars.join(", "),
            "ignoring PORTCULLIS_* environment variables that name no configuration key"
        );
    }
    match run(cli.command.unwrap_or(Command::Serve), config).await {
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
    let store = Store::connect(&config.database_url)
        .await
        .map_err(|e| err(&e))?;
    store.migrate().await.map_err(|e| err(&e))?;
    let result = match command {
        Command::Serve | Command::Keys(_) | Command::Catalog(_) => unreachable!("handled above"),
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
        Command::User(UserCommand::Create { membership, .. }) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .map_err(|e| err(&e))?;
            let password = password.trim_end_matches(['\r', '\n']);
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
    };
    result.map(Some).map_err(|e| err(&e))
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
    let state = portcullis::build(config).await.map_err(|e| e.to_string())?;
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
