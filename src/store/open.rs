//! Opening the database named by `database_url`, with answers an operator
//! can act on: an unsupported scheme is refused by name, a PostgreSQL
//! connection failure names the host, port and database tried (never the
//! password), and the administration commands never create an empty SQLite
//! file by accident. A SQLite file this process creates is readable by its
//! owner only (mode 0600), and so are its `-wal` and `-shm` files, which
//! SQLite creates with the database file's mode.

use std::{path::PathBuf, str::FromStr, time::Duration};

use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{Result, Store, StoreError};

/// Whether opening may create a missing SQLite file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// `serve` and `migrate`: a first start creates the file.
    IfMissing,
    /// Administration commands: a missing file is an error naming it.
    Never,
}

/// The SQLite file a `sqlite:` URL names, or `None` for an in-memory one.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

impl Store {
    /// Opens the database named by `url` (`sqlite:…`, `postgres://…` or
    /// `postgresql://…`; anything else is refused by its scheme).
    pub async fn open(url: &str, create: Create) -> Result<Store> {
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        match scheme {
            "postgres" | "postgresql" => open_postgres(url).await,
            "sqlite" => open_sqlite(url, create).await,
            _ => Err(StoreError::Open(format!(
                "database_url scheme {:?} is not supported; use sqlite://FILE or postgres://USER@HOST:PORT/DATABASE",
                if scheme.is_empty() { url } else { scheme }
            ))),
        }
    }
}

async fn open_postgres(url: &str) -> Result<Store> {
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        StoreError::Open(format!(
            "database_url {:?} is not a valid PostgreSQL URL: {e}",
            crate::config::redact_password(url)
        ))
    })?;
    let place = format!(
        "PostgreSQL at {}:{}, database {:?}, user {:?}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(the user's default)"),
        options.get_username()
    );
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Open(format!("cannot connect to {place}: {e}")))?;
    Ok(Store::Postgres(pool))
}

async fn open_sqlite(url: &str, create: Create) -> Result<Store> {
    let path = sqlite_path(url);
    if let Some(path) = &path {
        if !path.exists() {
            if create == Create::Never {
                return Err(StoreError::Open(format!(
                    "no database at {} (database_url {url:?}); `portcullis serve` or `portcullis migrate` creates it",
                    path.display()
                )));
            }
            create_private(path)?;
        }
        restrict(path);
    }
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(create == Create::IfMissing)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(|e| match &path {
            Some(p) => {
                StoreError::Open(format!("cannot open SQLite database {}: {e}", p.display()))
            }
            None => StoreError::Database(e),
        })?;
    if let Some(path) = &path {
        restrict(path);
    }
    Ok(Store::Sqlite(pool))
}

/// Creates an empty database file readable by its owner only.
fn create_private(path: &std::path::Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => {
            tracing::info!(path = %path.display(), "created SQLite database (mode 0600)");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Open(format!(
            "cannot create SQLite database {}: {e}",
            path.display()
        ))),
    }
}

/// Tightens the database file and its WAL companions to mode 0600 where they
/// exist and are ours (a file shared on purpose is left alone if we cannot
/// change it).
fn restrict(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut names = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            names.push(PathBuf::from(name));
        }
        for name in names {
            if let Ok(meta) = std::fs::metadata(&name)
                && meta.permissions().mode() & 0o077 != 0
            {
                let _ = std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://portcullis.db"),
            Some("portcullis.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/p.db?mode=rwc"),
            Some("/var/lib/p.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    #[tokio::test]
    async fn unsupported_schemes_are_refused_by_name() {
        let e = Store::open("mysql://root@localhost/p", Create::IfMissing)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"mysql\" is not supported"), "{e}");
    }

    #[tokio::test]
    async fn postgres_failures_name_host_port_and_database_but_not_the_password() {
        let e = Store::open(
            "postgres://pcl:s3cret@127.0.0.1:9/portcullis",
            Create::IfMissing,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("127.0.0.1:9") && e.contains("\"portcullis\""),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[tokio::test]
    async fn admin_commands_never_create_a_database_and_serve_creates_it_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let url = format!("sqlite://{}", path.display());
        let e = Store::open(&url, Create::Never)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no database at") && e.contains("portcullis migrate"),
            "{e}"
        );
        assert!(!path.exists());
        let store = Store::open(&url, Create::IfMissing).await.unwrap();
        store.migrate().await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{}{suffix}", path.display());
                let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{file}");
            }
        }
        drop(store);
        Store::open(&url, Create::Never).await.unwrap();
    }
}
